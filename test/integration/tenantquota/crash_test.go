package tenantquota

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// The operator is killed right after each of its writes on the budget path, then started again. Whatever the
// point: no workload is admitted without its accounting, no more is admitted than the budget holds, and the
// ledger equals the test's own timeline to the second.
func TestBudgetPathSurvivesACrashAfterEachWrite(t *testing.T) {
	workloadIn := func(w framework.Write, ns string) (*kueue.Workload, bool) {
		wl, ok := w.Object.(*kueue.Workload)
		return wl, ok && wl.Namespace == ns
	}
	points := []struct {
		name  string
		crash func(ns string) framework.CrashAfter
	}{
		{"accounting finalizer and baseline", func(ns string) framework.CrashAfter {
			return func(w framework.Write) bool {
				wl, ok := workloadIn(w, ns)
				return ok && w.Verb == "patch" && wl.DeletionTimestamp == nil && controllerutil.ContainsFinalizer(wl, accounting.AccountingFinalizer)
			}
		}},
		{"budget check Ready", func(ns string) framework.CrashAfter {
			return func(w framework.Write) bool {
				wl, ok := workloadIn(w, ns)
				if !ok || w.Verb != "status patch" {
					return false
				}
				for _, c := range wl.Status.AdmissionChecks {
					if c.Name == aifv1.BudgetCheckName && c.State == kueue.CheckStateReady {
						return true
					}
				}
				return false
			}
		}},
		{"status with the reservation", func(ns string) framework.CrashAfter {
			return func(w framework.Write) bool {
				tq, ok := w.Object.(*aifv1.TenantQuota)
				return ok && tq.Name == ns && w.Verb == "status update" && tq.Status.Budget != nil && tq.Status.Budget.ReservedGPUSeconds > 0
			}
		}},
		{"ledger of a deleted workload", func(ns string) framework.CrashAfter {
			return func(w framework.Write) bool {
				tq, ok := w.Object.(*aifv1.TenantQuota)
				return ok && tq.Name == ns && w.Verb == "status update" && tq.Status.Ledger != nil && tq.Status.Ledger.DeletedGPUSeconds > 0
			}
		}},
		{"release of a booked workload", func(ns string) framework.CrashAfter {
			return func(w framework.Write) bool {
				wl, ok := workloadIn(w, ns)
				return ok && w.Verb == "patch" && wl.DeletionTimestamp != nil
			}
		}},
	}
	for i, p := range points {
		t.Run(p.name, func(t *testing.T) {
			name := fmt.Sprintf("crash-%d", i)
			crashThenRecover(t, name, p.crash(name))
		})
	}
}

// crashThenRecover runs two 8-GPU runs of 300 s bounds on one GPU-hour (only one fits at a time) under an
// operator that crashes at the chosen write, and a fresh operator after the crash.
func crashThenRecover(t *testing.T, name string, crash framework.CrashAfter) {
	ctx := context.Background()
	clk := newClock()
	op, err := env.StartCrashingOperator(testConfig(), clk, crash)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Stop() })
	restarted := make(chan error, 1)
	go func() {
		w, ok := <-op.Crashed()
		if !ok {
			return
		}
		_ = op.Stop()
		t.Logf("crashed after %s of %T %s", w.Verb, w.Object, w.Object.GetName())
		again, err := env.StartOperator(testConfig(), clk)
		if err == nil {
			t.Cleanup(func() { _ = again.Stop() })
		}
		restarted <- err
	}()

	setup(t, builders.TenantQuota(name).GPUs(builders.GPUClassH100, 16).Budget(1, aifv1.PeriodYear, aifv1.ExhaustedHold).Obj())
	a := submit(t, bounded(h100Job(name, "first", 1), 300))
	b := submit(t, bounded(h100Job(name, "second", 1), 300))
	// Kueue may reserve quota for either first; the one the budget check grants is "first" from here on.
	var first, second *batchv1.Job
	framework.Eventually(t, func(g gomega.Gomega) {
		_, errA := framework.AdmittedAt(workload(g, a))
		_, errB := framework.AdmittedAt(workload(g, b))
		g.Expect((errA == nil) != (errB == nil)).To(gomega.BeTrue(), "exactly one admitted")
		first, second = a, b
		if errA != nil {
			first, second = b, a
		}
	})
	t1 := admitted(t, first)
	waitsForBudget(t, second)
	accounted := func(g gomega.Gomega) {
		var wls kueue.WorkloadList
		g.Expect(c.List(ctx, &wls, client.InNamespace(name))).To(gomega.Succeed())
		n := 0
		for _, wl := range wls.Items {
			if apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadAdmitted) && !finished(&wl) {
				n++
				g.Expect(wl.Finalizers).To(gomega.ContainElement(accounting.AccountingFinalizer), "admitted without its accounting: %s", wl.Name)
			}
		}
		g.Expect(n).To(gomega.BeNumerically("<=", 1), "two runs of 2,400 GPU-seconds admitted on 3,600")
	}
	framework.Eventually(t, accounted)

	// The first run ends after 60 s and is deleted (the garbage collector's part, done here): its 480
	// GPU-seconds go into the ledger, and the second run fits.
	end := t1.Add(60 * time.Second)
	clk.SetTime(end)
	firstWl := &kueue.Workload{}
	framework.Eventually(t, func(g gomega.Gomega) { firstWl = workload(g, first) })
	complete(t, first)
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(finished(workload(g, first))).To(gomega.BeTrue()) })
	firstEnd := finishedAt(get(t, firstWl))
	if err := c.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, firstWl); err != nil {
		t.Fatal(err)
	}
	t2 := admitted(t, second)
	framework.Consistently(t, accounted)
	select {
	case err := <-restarted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(framework.Timeout):
		t.Fatal("the crash point was never reached")
	}

	now := latest(t2, end).Add(30 * time.Second)
	clk.SetTime(now)
	poke(t, name)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(firstWl), &kueue.Workload{}))).To(gomega.BeTrue(), "the booked workload is released")
		tq := tenant(t, name)
		deleted := gpuSeconds(8, t1, firstEnd)
		g.Expect(tq.Status.Ledger.DeletedGPUSeconds).To(gomega.Equal(deleted))
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(deleted + gpuSeconds(8, t2, now)))
	})
}
