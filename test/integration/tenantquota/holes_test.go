package tenantquota

import (
	"context"
	"testing"
	"time"

	"github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"
	utiltestingapi "sigs.k8s.io/kueue/pkg/util/testing/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenantquota"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// While the operator is down, nothing of a budgeted tenant is admitted: the budget check stays Pending. Once
// the operator is back, the workload is admitted and counted.
func TestNothingIsAdmittedWhileTheOperatorIsDown(t *testing.T) {
	clk := newClock()
	op := startOperator(t, testConfig(), clk)
	const name = "hole-outage"
	setup(t, builders.TenantQuota(name).GPUs(builders.GPUClassH100, 16).Budget(10, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj())
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(condition(tenant(t, name), aifv1.ConditionReady).Status).To(gomega.Equal(metav1.ConditionTrue))
		g.Expect(clusterQueue(g, name).Spec.AdmissionChecksStrategy.AdmissionChecks).To(gomega.ContainElement(kueue.AdmissionCheckStrategyRule{Name: aifv1.BudgetCheckName}))
	})
	if err := op.Stop(); err != nil {
		t.Fatal(err)
	}
	job := submit(t, bounded(h100Job(name, "while-down", 1), 600))
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(apimeta.IsStatusConditionTrue(workload(g, job).Status.Conditions, kueue.WorkloadQuotaReserved)).To(gomega.BeTrue())
	})
	framework.Consistently(t, func(g gomega.Gomega) {
		wl := workload(g, job)
		_, err := framework.AdmittedAt(wl)
		g.Expect(err).To(gomega.HaveOccurred(), "admitted while the operator was down")
		g.Expect(budgetCheck(wl).State).To(gomega.Equal(kueue.CheckStatePending))
	})

	startOperator(t, testConfig(), clk)
	at := admitted(t, job)
	clk.SetTime(at.Add(2 * time.Minute))
	poke(t, name)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(workload(g, job).Finalizers).To(gomega.ContainElement(accounting.AccountingFinalizer))
		g.Expect(tenant(t, name).Status.Budget.UsedGPUSeconds).To(gomega.Equal(int64(8 * 120)))
	})
}

// A namespace dropped from a tenant keeps its finished workloads' seconds in the period, and those workloads
// lose their accounting finalizer, so that the namespace can be deleted.
func TestDroppedNamespaceKeepsItsSecondsAndReleasesItsWorkloads(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	startOperator(t, testConfig(), clk)
	const name = "hole-dropped"
	setup(t, builders.TenantQuota(name).Namespaces(name, "hole-dropped-old").GPUs(builders.GPUClassH100, 16).Budget(10, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj())
	job := submit(t, bounded(h100Job("hole-dropped-old", "done", 1), 600))
	at := admitted(t, job)
	complete(t, job)
	var used int64
	framework.Eventually(t, func(g gomega.Gomega) {
		wl := workload(g, job)
		g.Expect(finished(wl)).To(gomega.BeTrue())
		g.Expect(wl.Finalizers).To(gomega.ContainElement(accounting.AccountingFinalizer))
		used = gpuSeconds(8, at, finishedAt(wl))
	})
	clk.SetTime(at.Add(time.Hour))
	updateTenant(t, name, func(tq *aifv1.TenantQuota) { tq.Spec.Namespaces = []string{name} })
	framework.Eventually(t, func(g gomega.Gomega) {
		err := c.Get(ctx, client.ObjectKey{Namespace: "hole-dropped-old", Name: "default"}, &kueue.LocalQueue{})
		g.Expect(err).To(gomega.HaveOccurred(), "the LocalQueue of the dropped namespace goes")
		g.Expect(workload(g, job).Finalizers).NotTo(gomega.ContainElement(accounting.AccountingFinalizer))
		tq := tenant(t, name)
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(used))
		g.Expect(tq.Status.Ledger.DeletedGPUSeconds).To(gomega.Equal(used))
	})
	poke(t, name)
	framework.Consistently(t, func(g gomega.Gomega) {
		g.Expect(tenant(t, name).Status.Budget.UsedGPUSeconds).To(gomega.Equal(used), "counted once, and kept")
	})
}

// A LocalQueue that a tenant engineer made in its own namespace, without the operator's labels, pointing at the
// tenant's ClusterQueue: its workloads pass the budget check and count like any other.
func TestUnlabelledLocalQueueCounts(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	startOperator(t, testConfig(), clk)
	const name = "hole-unlabelled"
	setup(t, builders.TenantQuota(name).GPUs(builders.GPUClassH100, 16).Budget(10, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj())
	side := utiltestingapi.MakeLocalQueue("side", name).ClusterQueue(tenantquota.ClusterQueueName(name)).Obj()
	if err := c.Create(ctx, side); err != nil {
		t.Fatal(err)
	}
	job := bounded(h100Job(name, "via-side", 1), 600)
	job.Labels["kueue.x-k8s.io/queue-name"] = "side"
	submit(t, job)
	at := admitted(t, job)
	clk.SetTime(at.Add(3 * time.Minute))
	poke(t, name)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(workload(g, job).Finalizers).To(gomega.ContainElement(accounting.AccountingFinalizer))
		b := tenant(t, name).Status.Budget
		g.Expect(b.UsedGPUSeconds).To(gomega.Equal(int64(8 * 180)))
		g.Expect(b.ReservedGPUSeconds).To(gomega.Equal(int64(8 * (600 - 180))))
	})
}
