package tenantquota

import (
	"testing"

	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// Two tenants of one cohort with 16 H100s each: A borrows B's idle GPUs, B reclaims them by preemption, and
// work beyond A's nominal quota plus borrowing limit waits with Kueue's reason in A's status.
func TestCohortBorrowingAndReclaim(t *testing.T) {
	startOperator(t, testConfig(), newClock())
	a := builders.TenantQuota("cohort-a").Cohort("eu-cohort").GPUs(builders.GPUClassH100, 16).
		Limits(builders.GPUClassH100, ptr.To[int32](8), nil).Obj()
	b := builders.TenantQuota("cohort-b").Cohort("eu-cohort").GPUs(builders.GPUClassH100, 16).Obj()
	setup(t, a, b)
	framework.Eventually(t, func(g gomega.Gomega) {
		for _, name := range []string{"cohort-a", "cohort-b"} {
			tq := tenant(t, name)
			g.Expect(condition(tq, aifv1.ConditionReady).Status).To(gomega.Equal(metav1.ConditionTrue), name)
			g.Expect(tq.Status.Namespaces).To(gomega.ConsistOf(aifv1.NamespaceStatus{Name: name, Exists: true, LocalQueue: "default"}))
		}
	})

	// 3 workers x 8 GPUs = 24 GPUs: 16 of A's own and 8 borrowed from idle B.
	big := submit(t, h100Job("cohort-a", "borrower", 3))
	admitted(t, big)
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := tenant(t, "cohort-a")
		g.Expect(tq.Status.GPUs).To(gomega.ConsistOf(aifv1.GPUClassStatus{GPUClass: builders.GPUClassH100, Nominal: 16, Admitted: 24, Borrowed: 8}))
		g.Expect(tq.Status.AdmittedGPUs).To(gomega.Equal(int32(24)))
		g.Expect(tq.Status.Workloads).To(gomega.Equal(aifv1.WorkloadCounts{Admitted: 1}))
	})

	// B needs its 16 GPUs back: Kueue preempts A's borrowing workload.
	own := submit(t, h100Job("cohort-b", "owner", 2))
	admitted(t, own)
	framework.Eventually(t, func(g gomega.Gomega) {
		wl := workload(g, big)
		_, err := framework.AdmittedAt(wl)
		g.Expect(err).To(gomega.HaveOccurred())
		tqA, tqB := tenant(t, "cohort-a"), tenant(t, "cohort-b")
		g.Expect(tqA.Status.Workloads.Admitted).To(gomega.BeZero())
		g.Expect(tqA.Status.Workloads.Pending).To(gomega.Equal(int32(1)))
		g.Expect(tqA.Status.Workloads.Waiting).To(gomega.ConsistOf(gomega.HaveField("Message",
			gomega.ContainSubstring("insufficient unused quota for nvidia.com/gpu in flavor h100-80gb, 8 more needed"))))
		g.Expect(tqB.Status.GPUs[0].Admitted).To(gomega.Equal(int32(16)))
		g.Expect(tqB.Status.Workloads).To(gomega.Equal(aifv1.WorkloadCounts{Admitted: 1}))
	})

	// 4 x 8 = 32 GPUs is more than A's 16 nominal plus its borrowing limit of 8: it can never fit.
	huge := submit(t, h100Job("cohort-a", "too-big", 4))
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := tenant(t, "cohort-a")
		g.Expect(tq.Status.Workloads.Waiting).To(gomega.ContainElement(gomega.SatisfyAll(
			gomega.HaveField("Name", workload(g, huge).Name),
			gomega.HaveField("Message", gomega.ContainSubstring("nvidia.com/gpu in flavor h100-80gb")),
		)))
	})
}
