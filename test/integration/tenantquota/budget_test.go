package tenantquota

import (
	"context"
	"testing"
	"time"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenantquota"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// A tenant with 2 GPU-hours: running work spends them as the (fake) clock advances; once they are spent, new
// work waits while running work goes on (Hold); a larger budget releases it, and so does the next period.
func TestBudgetHoldsNewWorkUntilRaisedOrNextPeriod(t *testing.T) {
	clk := newClock()
	startOperator(t, testConfig(), clk)
	const name = "budget-hold"
	setup(t, builders.TenantQuota(name).GPUs(builders.GPUClassH100, 16).Budget(2, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj())

	first := submit(t, h100Job(name, "first", 1))
	t1 := admitted(t, first)

	clk.SetTime(t1.Add(10 * time.Minute))
	poke(t, name)
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := tenant(t, name)
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(int64(8 * 600)))
		g.Expect(tq.Status.Budget.UsedGPUHours).To(gomega.Equal("1.33"))
		g.Expect(tq.Status.Budget.RemainingGPUHours).To(gomega.Equal("0.66"))
		g.Expect(condition(tq, aifv1.ConditionBudgetExhausted).Status).To(gomega.Equal(metav1.ConditionFalse))
	})

	clk.SetTime(t1.Add(15 * time.Minute))
	poke(t, name)
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := tenant(t, name)
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(int64(8 * 900)))
		cond := condition(tq, aifv1.ConditionBudgetExhausted)
		g.Expect(cond.Status).To(gomega.Equal(metav1.ConditionTrue))
		g.Expect(cond.Message).To(gomega.ContainSubstring("2.00 of 2 GPU-hours used"))
		g.Expect(*clusterQueue(g, name).Spec.StopPolicy).To(gomega.Equal(kueue.Hold))
	})

	second := submit(t, h100Job(name, "second", 1))
	waitsForQuota(t, second)
	if _, err := framework.AdmittedAt(get(t, workloadOf(t, first))); err != nil {
		t.Fatalf("running work must go on under Hold: %v", err)
	}

	// A larger budget releases the waiting work.
	updateTenant(t, name, func(tq *aifv1.TenantQuota) { tq.Spec.Budget.GPUHours = 100 })
	t2 := admitted(t, second)
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := tenant(t, name)
		g.Expect(condition(tq, aifv1.ConditionBudgetExhausted).Status).To(gomega.Equal(metav1.ConditionFalse))
		g.Expect(*clusterQueue(g, name).Spec.StopPolicy).To(gomega.Equal(kueue.None))
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(gpuSeconds(8, t1, clk.Now()) + gpuSeconds(8, t2, clk.Now())))
	})

	// Back to 2 GPU-hours: spent again. The first job finishes; a third waits for the next period.
	updateTenant(t, name, func(tq *aifv1.TenantQuota) { tq.Spec.Budget.GPUHours = 2 })
	complete(t, first)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(finished(workload(g, first))).To(gomega.BeTrue())
		g.Expect(condition(tenant(t, name), aifv1.ConditionBudgetExhausted).Status).To(gomega.Equal(metav1.ConditionTrue))
	})
	third := submit(t, h100Job(name, "third", 1))
	waitsForQuota(t, third)

	// 1 minute into the next month only the second job's last minute counts.
	next := tenantquota.PeriodAt(aifv1.PeriodMonth, clk.Now()).End
	clk.SetTime(next.Add(time.Minute))
	poke(t, name)
	admitted(t, third)
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := tenant(t, name)
		g.Expect(tq.Status.Budget.PeriodStart.Time.Equal(next)).To(gomega.BeTrue())
		// the third job was admitted (at a real time before "next") and runs too: it counts from the boundary
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(int64(8*60 + 8*60)))
		g.Expect(condition(tq, aifv1.ConditionBudgetExhausted).Status).To(gomega.Equal(metav1.ConditionFalse))
	})
}

// The ledger survives a manager restart with a deleted workload in the middle, to the second, and splits a
// running workload at the period boundary.
func TestLedgerIsExactAcrossARestart(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	op := startOperator(t, testConfig(), clk)
	const name = "ledger-restart"
	setup(t, builders.TenantQuota(name).GPUs(builders.GPUClassH100, 32).Budget(1000, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj())

	running := submit(t, h100Job(name, "running", 2))
	done := submit(t, h100Job(name, "done", 1))
	gone := submit(t, h100Job(name, "gone", 1))
	tRun, tDone, tGone := admitted(t, running), admitted(t, done), admitted(t, gone)
	framework.Eventually(t, func(g gomega.Gomega) {
		for _, j := range []*batchv1.Job{running, done, gone} {
			g.Expect(workload(g, j).Finalizers).To(gomega.ContainElement(tenantquota.AccountingFinalizer))
		}
	})
	complete(t, done)
	var doneEnd time.Time
	framework.Eventually(t, func(g gomega.Gomega) {
		wl := workload(g, done)
		g.Expect(finished(wl)).To(gomega.BeTrue())
		doneEnd = finishedAt(wl)
	})
	clk.SetTime(latest(tRun, tDone, tGone).Add(5 * time.Minute))
	poke(t, name)
	framework.Eventually(t, func(g gomega.Gomega) {
		want := gpuSeconds(16, tRun, clk.Now()) + gpuSeconds(8, tDone, doneEnd) + gpuSeconds(8, tGone, clk.Now())
		g.Expect(tenant(t, name).Status.Budget.UsedGPUSeconds).To(gomega.Equal(want))
	})

	// The manager goes down. Meanwhile the "gone" job is deleted: the garbage collector (not running in
	// envtest, so done here) deletes its workload, which waits for the ledger on the accounting finalizer.
	if err := op.Stop(); err != nil {
		t.Fatal(err)
	}
	goneWl := &kueue.Workload{}
	framework.Eventually(t, func(g gomega.Gomega) { goneWl = workload(g, gone) })
	if err := c.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, goneWl); err != nil {
		t.Fatal(err)
	}
	goneWl = get(t, goneWl)
	if goneWl.DeletionTimestamp == nil {
		t.Fatal("the deleted workload should wait on the accounting finalizer")
	}
	goneEnd := goneWl.DeletionTimestamp.UTC()
	clk.SetTime(clk.Now().Add(20 * time.Minute))

	startOperator(t, testConfig(), clk)
	framework.Eventually(t, func(g gomega.Gomega) {
		err := c.Get(ctx, client.ObjectKeyFromObject(goneWl), &kueue.Workload{})
		g.Expect(err).To(gomega.HaveOccurred(), "the deleted workload is released once booked")
		tq := tenant(t, name)
		deleted := gpuSeconds(8, tGone, goneEnd)
		g.Expect(tq.Status.Ledger.DeletedGPUSeconds).To(gomega.Equal(deleted))
		g.Expect(tq.Status.Ledger.DeletedWorkloads).To(gomega.BeEmpty())
		want := gpuSeconds(16, tRun, clk.Now()) + gpuSeconds(8, tDone, doneEnd) + deleted
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(want))
		g.Expect(gauge(g, "aifactory_tenant_gpu_seconds_used", name)).To(gomega.Equal(float64(want)))
		g.Expect(gauge(g, "aifactory_tenant_budget_remaining_gpu_seconds", name)).To(gomega.Equal(float64(1000*3600 - want)))
		g.Expect(gauge(g, "aifactory_tenant_admitted_gpus", name)).To(gomega.Equal(float64(16)))
	})

	// Into the next month: only the running job's first 90 seconds of it count.
	next := tenantquota.PeriodAt(aifv1.PeriodMonth, clk.Now()).End
	clk.SetTime(next.Add(90 * time.Second))
	poke(t, name)
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := tenant(t, name)
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(int64(16 * 90)))
		g.Expect(tq.Status.Ledger.DeletedGPUSeconds).To(gomega.BeZero())
		g.Expect(workload(g, running).Annotations).To(gomega.HaveKey(tenantquota.BaselineAnnotation))
	})
}

// gauge reads a tenant's gauge from the operator's metrics registry.
func gauge(g gomega.Gomega, name, tenant string) float64 {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(gomega.HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == tenant {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

func workloadOf(t *testing.T, job *batchv1.Job) *kueue.Workload {
	t.Helper()
	wl, err := framework.WorkloadOf(context.Background(), c, job)
	if err != nil {
		t.Fatal(err)
	}
	return wl
}

func gpuSeconds(gpus int64, from, to time.Time) int64 {
	return gpus * int64(to.Sub(from)/time.Second)
}

func latest(ts ...time.Time) time.Time {
	out := ts[0]
	for _, t := range ts[1:] {
		if t.After(out) {
			out = t
		}
	}
	return out
}

func finished(wl *kueue.Workload) bool {
	for _, c := range wl.Status.Conditions {
		if c.Type == kueue.WorkloadFinished && c.Status == metav1.ConditionTrue {
			return true
		}
	}
	return false
}

func finishedAt(wl *kueue.Workload) time.Time {
	for _, c := range wl.Status.Conditions {
		if c.Type == kueue.WorkloadFinished {
			return c.LastTransitionTime.UTC()
		}
	}
	return time.Time{}
}
