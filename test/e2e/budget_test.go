package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenantquota"
	"github.com/aifactory-eu/aifactory-operator/internal/factory"
	"github.com/aifactory-eu/aifactory-operator/internal/plugin"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// budgetChecked waits until the tenant is Ready and its ClusterQueue names the budget check.
func budgetChecked(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		g.Expect(apimeta.IsStatusConditionTrue(tq.Status.Conditions, aifv1.ConditionReady)).To(gomega.BeTrue())
		cq := &kueue.ClusterQueue{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: tenantquota.ClusterQueueName(ns)}, cq)).To(gomega.Succeed())
		g.Expect(cq.Spec.AdmissionChecksStrategy).NotTo(gomega.BeNil())
	})
}

// samples is what a sampler saw of a tenant's workloads.
type samples struct {
	n, maxAdmitted int
	// maxUse is the most GPU-seconds used, from Kueue's conditions; maxCommitted the most used plus reserved,
	// as the tenant's status showed them.
	maxUse, maxCommitted int64
	unaccounted          []string
	err                  error
}

// check fails the test unless the samples are enough and stayed within at most admitted runs and budget
// GPU-seconds, with every admitted workload's accounting in place.
func (s samples) check(t *testing.T, admitted int, budget int64) {
	t.Helper()
	t.Logf("%d samples: at most %d runs admitted at once, at most %d GPU-seconds used, at most %d used or reserved", s.n, s.maxAdmitted, s.maxUse, s.maxCommitted)
	switch {
	case s.err != nil:
		t.Fatal(s.err)
	case s.n < 100 || s.maxAdmitted == 0:
		t.Fatalf("too few samples, or nothing admitted: %+v", s)
	case s.maxAdmitted > admitted || s.maxUse > budget || s.maxCommitted > budget:
		t.Fatalf("%d runs admitted at once, %d GPU-seconds used, %d used or reserved; want at most %d runs and %d GPU-seconds",
			s.maxAdmitted, s.maxUse, s.maxCommitted, admitted, budget)
	case len(s.unaccounted) > 0:
		t.Fatalf("admitted without the accounting finalizer: %v", s.unaccounted)
	}
}

// sample reads the namespace's workloads every 100 ms until the returned function is called, which returns
// what it saw.
func sample(ctx context.Context, ns string) func() samples {
	var mu sync.Mutex
	var seen samples
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				secs, admitted, unaccounted, err := use(ctx, ns, now)
				tq := &aifv1.TenantQuota{}
				if gerr := f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq); gerr != nil && err == nil {
					err = gerr
				}
				mu.Lock()
				if b := tq.Status.Budget; b != nil {
					seen.maxCommitted = max(seen.maxCommitted, b.UsedGPUSeconds+b.ReservedGPUSeconds)
				}
				seen.n++
				seen.maxUse, seen.maxAdmitted = max(seen.maxUse, secs), max(seen.maxAdmitted, admitted)
				seen.unaccounted = append(seen.unaccounted, unaccounted...)
				if err != nil && seen.err == nil {
					seen.err = err
				}
				mu.Unlock()
			}
		}
	}()
	return func() samples {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// use is the tenant's GPU-seconds in its workloads at now, by Kueue's own conditions, and how many of them are
// admitted and not finished.
func use(ctx context.Context, ns string, now time.Time) (secs int64, admitted int, unaccounted []string, err error) {
	var wls kueue.WorkloadList
	if err := f.Client.List(ctx, &wls, client.InNamespace(ns)); err != nil {
		return 0, 0, nil, err
	}
	isGPU := func(r corev1.ResourceName) bool { return r == "nvidia.com/gpu" || r == builders.MIGResource }
	for i := range wls.Items {
		wl := &wls.Items[i]
		u := accounting.UsageOf(wl, isGPU)
		secs += u.GPUSecondsAt(now)
		if u.AdmittedAt != nil && u.EndedAt == nil {
			admitted++
			if !controllerutil.ContainsFinalizer(wl, accounting.AccountingFinalizer) {
				unaccounted = append(unaccounted, wl.Name)
			}
		}
	}
	return secs, admitted, unaccounted, nil
}

// restricted makes a plain Job's pod pass Pod Security "restricted" and tolerate the GPU nodes' taint, as
// restrictedPod does for a Pod.
func restricted(s *corev1.PodSpec) {
	p := restrictedPod("", "", 0)
	s.SecurityContext, s.Tolerations = p.Spec.SecurityContext, p.Spec.Tolerations
	s.Containers[0].SecurityContext = p.Spec.Containers[0].SecurityContext
}

// A tenant with one GPU-hour and 32 GPUs submits six 8-GPU runs bounded at 150 s (1,200 GPU-seconds reserved
// each) that finish after 30 s: at most three are admitted at any moment, all six succeed, and the use never
// passes 3,600 GPU-seconds in samples taken every 100 ms.
func TestBudgetIsNeverOverspent(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-reserve"
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassH100, 32).Budget(1, aifv1.PeriodDay, aifv1.ExhaustedHold))

	stop := sample(ctx, ns)
	for i := range 6 {
		create(t, run(ns, fmt.Sprintf("run-%d", i), 1, 8, 30*time.Second).MaxRunDuration(150*time.Second).Obj())
	}
	sawWaiting := false
	framework.EventuallyWithin(t, 6*time.Minute, func(g gomega.Gomega) {
		var list aifv1.TrainingJobList
		g.Expect(f.Client.List(ctx, &list, client.InNamespace(ns))).To(gomega.Succeed())
		for _, tj := range list.Items {
			sawWaiting = sawWaiting || tj.Status.Reason == aifv1.ReasonWaitingForBudget
		}
		for _, tj := range list.Items {
			g.Expect(tj.Status.Phase).To(gomega.Equal(aifv1.PhaseSucceeded), "%s: %s", tj.Name, tj.Status.Message)
		}
		g.Expect(list.Items).To(gomega.HaveLen(6))
	})
	stop().check(t, 3, 3600)
	if !sawWaiting {
		t.Fatal("no run was seen waiting for its budget")
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		secs, _, _, err := use(ctx, ns, time.Now())
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(secs), "the ledger equals Kueue's timeline")
		g.Expect(tq.Status.Budget.ReservedGPUSeconds).To(gomega.BeZero())
	})
}

// A run whose bound alone needs more than the tenant's whole budget is never admitted, and says why, in its
// status and in `kubectl aifactory why`; a larger budget admits it within seconds. A run that fits goes on
// beside it.
func TestRunBeyondTheBudgetWaitsAndSaysWhy(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-budget"
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassMIG, factory.MIGSlicesPerNode).Budget(1, aifv1.PeriodDay, aifv1.ExhaustedHold))
	// 56 slices for the default bound of 24 hours: 1,344 GPU-hours.
	create(t, mig(run(ns, "too-big", 1, 56, 2*time.Second)).Obj())
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		tj := get(g, ns, "too-big")
		g.Expect(tj.Status.Reason).To(gomega.Equal(aifv1.ReasonWaitingForBudget))
		g.Expect(tj.Status.Message).To(gomega.ContainSubstring("needs 1344.00 GPU-hours (56 GPUs x 24h0m0s run bound)"))
		g.Expect(tj.Status.Message).To(gomega.ContainSubstring("its reservation alone exceeds the budget"))
	})
	framework.Consistently(t, func(g gomega.Gomega) {
		g.Expect(get(g, ns, "too-big").Status.Phase).To(gomega.Equal(aifv1.PhaseQueued), "no admission beyond the budget")
	})
	tq := &aifv1.TenantQuota{}
	if err := f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq); err != nil {
		t.Fatal(err)
	}
	var why bytes.Buffer
	framework.Eventually(t, func(g gomega.Gomega) {
		tj := get(g, ns, "too-big")
		why.Reset()
		plugin.Why(&why, tj, tq, []aifv1.TenantQuota{*tq})
	})
	for _, want := range []string{"budget check (AdmissionCheck aifactory-budget) holds its admission", "spec.budget.defaultMaxRunDuration", "larger spec.budget.gpuHours"} {
		if !strings.Contains(why.String(), want) {
			t.Fatalf("kubectl aifactory why lacks %q:\n%s", want, why.String())
		}
	}

	framework.Eventually(t, func(g gomega.Gomega) {
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		tq.Spec.Budget.GPUHours = 2000
		g.Expect(f.Client.Update(ctx, tq)).To(gomega.Succeed())
	})
	waitPhase(t, ns, "too-big", long, aifv1.PhaseSucceeded)
}

// With the operator's process killed, a plain Kueue Job in a budgeted tenant's namespace is not admitted: the
// budget check waits for the operator. When the operator is back, the Job is admitted, runs and is counted.
func TestPlainJobWaitsWhileTheOperatorIsDown(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-outage"
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassH100, 8).Budget(10, aifv1.PeriodMonth, aifv1.ExhaustedHold))
	budgetChecked(t, ns)
	if err := f.Kill("operator"); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = f.Up(context.Background())
		}
	})
	job := builders.Job(ns, "plain", "default", 1, "nvidia.com/gpu", 8)
	job.Spec.Template.Annotations = map[string]string{aifv1.SimulatedRuntimeAnnotation: "3s"}
	job.Labels["kueue.x-k8s.io/max-exec-time-seconds"] = "600"
	restricted(&job.Spec.Template.Spec)
	if err := f.Client.Create(ctx, job); err != nil { // the operator's webhooks do not judge Jobs
		t.Fatal(err)
	}
	wl := &kueue.Workload{}
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		var err error
		wl, err = framework.WorkloadOf(ctx, f.Client, job)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadQuotaReserved)).To(gomega.BeTrue())
	})
	framework.Consistently(t, func(g gomega.Gomega) {
		got := &kueue.Workload{}
		g.Expect(f.Client.Get(ctx, client.ObjectKeyFromObject(wl), got)).To(gomega.Succeed())
		g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, kueue.WorkloadAdmitted)).To(gomega.BeFalse(), "admitted while the operator was down")
	})

	restarted = true
	if err := f.Up(ctx); err != nil {
		t.Fatal(err)
	}
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		got := &kueue.Workload{}
		g.Expect(f.Client.Get(ctx, client.ObjectKeyFromObject(wl), got)).To(gomega.Succeed())
		g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, kueue.WorkloadFinished)).To(gomega.BeTrue(), "admitted and run once the operator is back")
		secs, _, _, err := use(ctx, ns, time.Now())
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(secs).To(gomega.BeNumerically(">", 0))
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(secs), "counted")
	})
}

// A long run's use reaches `kubectl get tq` while it runs, with no event to bring the operator back: the
// operator refreshes it every minute.
func TestUseIsRefreshedWhileARunRuns(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-refresh"
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassH100, 8).Budget(10, aifv1.PeriodMonth, aifv1.ExhaustedHold))
	create(t, run(ns, "long", 1, 8, 150*time.Second).MaxRunDuration(200*time.Second).Obj())
	running := waitPhase(t, ns, "long", long, aifv1.PhaseRunning)
	since := running.Status.StartTime.Time
	framework.EventuallyWithin(t, 90*time.Second, func(g gomega.Gomega) {
		g.Expect(get(g, ns, "long").Status.Phase).To(gomega.Equal(aifv1.PhaseRunning))
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.BeNumerically(">=", 8*45), "admitted since %s", since)
	})
}

// The operator's process is killed at three moments of a tenant's budgeted runs (right after they are
// submitted, while one is admitted, after one has ended) and started again each time: at most three of the
// 1,200 GPU-second reservations are ever admitted together on one GPU-hour, no admitted workload lacks its
// accounting, every run has one Job, and the ledger equals Kueue's timeline.
func TestBudgetSurvivesOperatorKills(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-kills"
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassH100, 32).Budget(1, aifv1.PeriodDay, aifv1.ExhaustedHold))
	budgetChecked(t, ns)
	stop := sample(ctx, ns)
	killAndRestart := func(when string) {
		t.Helper()
		if err := f.Kill("operator"); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if err := f.Up(ctx); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
	}
	names := []string{"k-0", "k-1", "k-2", "k-3", "k-4"}
	for _, name := range names {
		create(t, run(ns, name, 1, 8, 20*time.Second).MaxRunDuration(150*time.Second).Obj())
	}
	killAndRestart("after submission")
	phases := func(g gomega.Gomega, want aifv1.TrainingJobPhase) int {
		n := 0
		for _, name := range names {
			if get(g, ns, name).Status.Phase == want {
				n++
			}
		}
		return n
	}
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) { g.Expect(phases(g, aifv1.PhaseRunning)).To(gomega.BeNumerically(">", 0)) })
	killAndRestart("while runs are admitted")
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) { g.Expect(phases(g, aifv1.PhaseSucceeded)).To(gomega.BeNumerically(">", 0)) })
	killAndRestart("after a run ended")
	framework.EventuallyWithin(t, 4*time.Minute, func(g gomega.Gomega) { g.Expect(phases(g, aifv1.PhaseSucceeded)).To(gomega.Equal(len(names))) })
	stop().check(t, 3, 3600)
	framework.Eventually(t, func(g gomega.Gomega) {
		for _, name := range names {
			var jobs batchv1.JobList
			g.Expect(f.Client.List(ctx, &jobs, client.InNamespace(ns), client.MatchingLabels{aifv1.TrainingJobLabel: name})).To(gomega.Succeed())
			g.Expect(jobs.Items).To(gomega.HaveLen(1), "one Job for %s", name)
		}
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		secs, _, _, err := use(ctx, ns, time.Now())
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(secs), "the ledger equals Kueue's timeline")
	})
}
