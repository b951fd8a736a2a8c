package tenantquota

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// Four 8-GPU runs with a bound of 150 s on a budget of one GPU-hour and 32 GPUs of quota: Kueue reserves quota
// for all four, the budget check admits the three whose reservations (1,200 GPU-seconds each) fit, and the
// fourth waits with the figures. One run ending early frees only what it did not use, so the fourth still waits; when
// a second ends, it is admitted.
func TestBudgetReservesBeforeAdmission(t *testing.T) {
	clk := newClock()
	startOperator(t, testConfig(), clk)
	const name = "budget-reserve"
	// Periods of a year, so that the test's minutes on the fake clock never cross a period's end.
	setup(t, builders.TenantQuota(name).GPUs(builders.GPUClassH100, 32).Budget(1, aifv1.PeriodYear, aifv1.ExhaustedHold).Obj())

	var submitted []*batchv1.Job
	for i := range 4 {
		submitted = append(submitted, submit(t, bounded(h100Job(name, fmt.Sprintf("run-%d", i), 1), 150)))
	}
	// Kueue reserves quota for the four in an order of its own (they share a creation second); the budget
	// check grants the three it sees first. jobs[3] is the one left waiting.
	var jobs []*batchv1.Job
	framework.Eventually(t, func(g gomega.Gomega) {
		var admittedJobs, waiting []*batchv1.Job
		for _, j := range submitted {
			if _, err := framework.AdmittedAt(workload(g, j)); err == nil {
				admittedJobs = append(admittedJobs, j)
			} else {
				waiting = append(waiting, j)
			}
		}
		g.Expect(admittedJobs).To(gomega.HaveLen(3))
		jobs = append(admittedJobs, waiting...)
	})
	t0, t1, t2 := admitted(t, jobs[0]), admitted(t, jobs[1]), admitted(t, jobs[2])
	msg := waitsForBudget(t, jobs[3])
	if !strings.Contains(msg, "needs 0.34 GPU-hours (8 GPUs x 2m30s run bound); 0.00 of 1.00 GPU-hours are free this year") {
		t.Fatalf("the waiting run says %q", msg)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		b := tenant(t, name).Status.Budget
		g.Expect(b.UsedGPUSeconds + b.ReservedGPUSeconds).To(gomega.Equal(int64(3600)))
		g.Expect(b.ReservedGPUHours).To(gomega.Equal(accounting.HoursUp(b.ReservedGPUSeconds)))
		g.Expect(gauge(g, "aifactory_tenant_budget_reserved_gpu_seconds", name)).To(gomega.Equal(float64(b.ReservedGPUSeconds)))
	})

	// 30 seconds in (on the operator's clock), the first run ends.
	now := latest(t0, t1, t2).Add(30 * time.Second)
	clk.SetTime(now)
	complete(t, jobs[0])
	var end0 time.Time
	framework.Eventually(t, func(g gomega.Gomega) {
		wl := workload(g, jobs[0])
		g.Expect(finished(wl)).To(gomega.BeTrue())
		end0 = finishedAt(wl)
		b := tenant(t, name).Status.Budget
		used := gpuSeconds(8, t0, end0) + gpuSeconds(8, t1, now) + gpuSeconds(8, t2, now)
		g.Expect(b.UsedGPUSeconds).To(gomega.Equal(used))
		g.Expect(b.ReservedGPUSeconds).To(gomega.Equal(8*(150-int64(now.Sub(t1)/time.Second)) + 8*(150-int64(now.Sub(t2)/time.Second))))
	})
	waitsForBudget(t, jobs[3])

	complete(t, jobs[1])
	admitted(t, jobs[3])
	framework.Eventually(t, func(g gomega.Gomega) {
		b := tenant(t, name).Status.Budget
		g.Expect(b.UsedGPUSeconds + b.ReservedGPUSeconds).To(gomega.BeNumerically("<=", 3600))
		g.Expect(workload(g, jobs[3]).Finalizers).To(gomega.ContainElement(accounting.AccountingFinalizer))
	})
}

// Waiting work is released within seconds when the budget grows, and when the next period starts.
func TestBudgetReleasesWaitingWorkWhenRaisedOrNextPeriod(t *testing.T) {
	clk := newClock()
	startOperator(t, testConfig(), clk)
	const name = "budget-release"
	// A year's period: its end is far enough from now for every bound to have passed there.
	setup(t, builders.TenantQuota(name).GPUs(builders.GPUClassH100, 32).Budget(1, aifv1.PeriodYear, aifv1.ExhaustedHold).Obj())

	first := submit(t, bounded(h100Job(name, "first", 1), 300))
	admitted(t, first)
	second := submit(t, bounded(h100Job(name, "second", 1), 300))
	waitsForBudget(t, second)

	updateTenant(t, name, func(tq *aifv1.TenantQuota) { tq.Spec.Budget.GPUHours = 2 })
	admitted(t, second)

	third := submit(t, bounded(h100Job(name, "third", 2), 300)) // 4,800 GPU-seconds
	waitsForBudget(t, third)

	// A minute into the next year every run has passed its bound on the operator's clock (Kueue, on the real
	// clock, has not stopped them): they reserve nothing, and only their minute of the new day counts.
	next := accounting.PeriodAt(aifv1.PeriodYear, clk.Now()).End
	clk.SetTime(next.Add(time.Minute))
	poke(t, name)
	admitted(t, third)
	framework.Eventually(t, func(g gomega.Gomega) {
		b := tenant(t, name).Status.Budget
		g.Expect(b.PeriodStart.Time.Equal(next)).To(gomega.BeTrue())
		g.Expect(b.UsedGPUSeconds).To(gomega.Equal(int64(8*60 + 8*60 + 16*60)))
		g.Expect(b.ReservedGPUSeconds).To(gomega.BeZero())
	})
}

// A run whose bound alone needs more than the whole budget is never admitted, says why, and holds nothing else
// back: a run that fits is admitted beside it.
func TestRunLargerThanTheBudgetIsNeverAdmitted(t *testing.T) {
	startOperator(t, testConfig(), newClock())
	const name = "budget-toolarge"
	setup(t, builders.TenantQuota(name).GPUs(builders.GPUClassH100, 32).Budget(100, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj())
	big := submit(t, h100Job(name, "big", 2)) // 16 GPUs x the default bound of 24 hours: 384 GPU-hours
	msg := waitsForBudget(t, big)
	for _, want := range []string{"needs 384.00 GPU-hours (16 GPUs x 24h0m0s run bound)", "its reservation alone exceeds the budget"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("the message %q lacks %q", msg, want)
		}
	}
	small := submit(t, bounded(h100Job(name, "small", 1), 3600))
	admitted(t, small)
	waitsForBudget(t, big)
}

// A workload that Kueue does not stop (it has no max-exec-time label) is stopped by the operator at the
// tenant's default bound, and says so.
func TestPlainWorkloadStopsAtTheTenantsBound(t *testing.T) {
	clk := newClock()
	startOperator(t, testConfig(), clk)
	const name = "budget-bound"
	tq := builders.TenantQuota(name).GPUs(builders.GPUClassH100, 32).Budget(100, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj()
	tq.Spec.Budget.DefaultMaxRunDuration = &metav1.Duration{Duration: 10 * time.Minute}
	setup(t, tq)
	job := submit(t, h100Job(name, "plain", 1))
	at := admitted(t, job)
	clk.SetTime(at.Add(9 * time.Minute))
	poke(t, name)
	framework.Consistently(t, func(g gomega.Gomega) {
		g.Expect(ptr.Deref(workload(g, job).Spec.Active, true)).To(gomega.BeTrue(), "stopped before its bound")
	})
	clk.SetTime(at.Add(10 * time.Minute))
	poke(t, name)
	framework.Eventually(t, func(g gomega.Gomega) {
		wl := workload(g, job)
		g.Expect(ptr.Deref(wl.Spec.Active, true)).To(gomega.BeFalse())
		g.Expect(wl.Annotations).To(gomega.HaveKeyWithValue(aifv1.BoundReachedAnnotation, "600"))
	})
}

// The ledger survives a manager restart with a deleted workload in the middle, to the second, and splits a
// running workload at the period boundary.
func TestLedgerIsExactAcrossARestart(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	op := startOperator(t, testConfig(), clk)
	const name = "ledger-restart"
	setup(t, builders.TenantQuota(name).GPUs(builders.GPUClassH100, 32).Budget(100000, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj())

	// Bounds of 40 days: the test moves the operator's clock into the next month, and a run that passed its
	// bound there would be stopped.
	const bound = 40 * 24 * 3600
	running := submit(t, bounded(h100Job(name, "running", 2), bound))
	done := submit(t, bounded(h100Job(name, "done", 1), bound))
	gone := submit(t, bounded(h100Job(name, "gone", 1), bound))
	tRun, tDone, tGone := admitted(t, running), admitted(t, done), admitted(t, gone)
	framework.Eventually(t, func(g gomega.Gomega) {
		for _, j := range []*batchv1.Job{running, done, gone} {
			g.Expect(workload(g, j).Finalizers).To(gomega.ContainElement(accounting.AccountingFinalizer))
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
		g.Expect(gauge(g, "aifactory_tenant_budget_remaining_gpu_seconds", name)).To(gomega.Equal(float64(100000*3600 - want)))
		g.Expect(gauge(g, "aifactory_tenant_admitted_gpus", name)).To(gomega.Equal(float64(16)))
	})

	// Into the next month: only the running job's first 90 seconds of it count.
	next := accounting.PeriodAt(aifv1.PeriodMonth, clk.Now()).End
	clk.SetTime(next.Add(90 * time.Second))
	poke(t, name)
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := tenant(t, name)
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(int64(16 * 90)))
		g.Expect(tq.Status.Ledger.DeletedGPUSeconds).To(gomega.BeZero())
		g.Expect(workload(g, running).Annotations).To(gomega.HaveKey(accounting.BaselineAnnotation))
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

// bounded gives a Job Kueue's maximum execution time, its run bound.
func bounded(job *batchv1.Job, seconds int) *batchv1.Job {
	job.Labels["kueue.x-k8s.io/max-exec-time-seconds"] = strconv.Itoa(seconds)
	return job
}

// waitsForBudget checks for a while that Kueue reserved quota for the job and the budget check holds its
// admission, and returns the check's message.
func waitsForBudget(t *testing.T, job *batchv1.Job) string {
	t.Helper()
	var msg string
	check := func(g gomega.Gomega) {
		wl := workload(g, job)
		g.Expect(apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadQuotaReserved)).To(gomega.BeTrue(), "quota reserved")
		_, err := framework.AdmittedAt(wl)
		g.Expect(err).To(gomega.HaveOccurred())
		st := budgetCheck(wl)
		g.Expect(st).NotTo(gomega.BeNil())
		g.Expect(st.State).To(gomega.Equal(kueue.CheckStatePending))
		g.Expect(st.Message).To(gomega.ContainSubstring("GPU-hours"))
		g.Expect(wl.Finalizers).To(gomega.ContainElement(accounting.AccountingFinalizer), "accounting is durable before the check is answered")
		msg = st.Message
	}
	framework.Eventually(t, check)
	framework.Consistently(t, check)
	return msg
}

func budgetCheck(wl *kueue.Workload) *kueue.AdmissionCheckState {
	for i := range wl.Status.AdmissionChecks {
		if wl.Status.AdmissionChecks[i].Name == aifv1.BudgetCheckName {
			return &wl.Status.AdmissionChecks[i]
		}
	}
	return nil
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
