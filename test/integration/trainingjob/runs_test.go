package trainingjob

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount"
	"github.com/aifactory-eu/aifactory-operator/controllers/trainingjob"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// tenant gives a test its own namespace and tenant with 16 H100 GPUs, a ReadOnly data root and a ReadWrite
// scratch root, so that tests do not share quota. It returns the namespace.
func tenant(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	namespace := "tj-" + name
	if err := env.CreateNamespaces(ctx, namespace); err != nil {
		t.Fatal(err)
	}
	tq := builders.TenantQuota(namespace).Namespaces(namespace).GPUs(builders.GPUClassH100, 16).
		Storage(builders.FilesystemData, "/"+name, aifv1.ReadOnly).Storage(builders.FilesystemScratch, "/"+name, aifv1.ReadWrite).
		Budget(1000, aifv1.PeriodYear, aifv1.ExhaustedHold).Obj()
	if err := c.Create(ctx, tq); err != nil {
		t.Fatal(err)
	}
	return namespace
}

// checkpoint creates a ReadWrite DatasetMount on the scratch filesystem and binds its claim. The
// PersistentVolume binder does not run in envtest: the test binds the claim as it would.
func checkpoint(t *testing.T, namespace, name, path string) {
	t.Helper()
	readyDataset(t, builders.DatasetMount(namespace, name, path).Filesystem(builders.FilesystemScratch).Access(aifv1.ReadWrite).Obj())
}

// readyDataset creates a DatasetMount and binds its claim, as the PersistentVolume binder would; envtest runs
// no binder.
func readyDataset(t *testing.T, dsm *aifv1.DatasetMount) {
	t.Helper()
	ctx := context.Background()
	if err := framework.DatasetFolder(cfg, dsm); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(c.Create(ctx, dsm)).To(gomega.Succeed()) })
	framework.Eventually(t, func(g gomega.Gomega) {
		pvc := &corev1.PersistentVolumeClaim{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: dsm.Namespace, Name: datasetmount.ClaimName(dsm)}, pvc)).To(gomega.Succeed())
		pvc.Status.Phase = corev1.ClaimBound
		g.Expect(c.Status().Update(ctx, pvc)).To(gomega.Succeed())
	})
}

func get(g gomega.Gomega, namespace, name string) *aifv1.TrainingJob {
	tj := &aifv1.TrainingJob{}
	g.Expect(c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, tj)).To(gomega.Succeed())
	return tj
}

func create(t *testing.T, tj *aifv1.TrainingJob) {
	t.Helper()
	if err := c.Create(context.Background(), tj); err != nil {
		t.Fatal(err)
	}
}

// admittedJob waits until the run's attempt is admitted and returns its Job and workload.
func admittedJob(t *testing.T, tj *aifv1.TrainingJob, attempt int32) (*batchv1.Job, *kueue.Workload) {
	t.Helper()
	ctx := context.Background()
	job, wl := &batchv1.Job{}, &kueue.Workload{}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: tj.Namespace, Name: trainingjob.JobName(tj, attempt)}, job)).To(gomega.Succeed())
		w, err := framework.WorkloadOf(ctx, c, job)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		_, err = framework.AdmittedAt(w)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(ptr.Deref(job.Spec.Suspend, true)).To(gomega.BeFalse())
		wl = w
	})
	return job, wl
}

// finishedSeconds is a finished workload's GPU-seconds from its own conditions, as the tenant is charged.
func finishedSeconds(t *testing.T, job *batchv1.Job, gpus int64) int64 {
	t.Helper()
	var secs int64
	framework.Eventually(t, func(g gomega.Gomega) {
		wl, err := framework.WorkloadOf(context.Background(), c, job)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		f := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadFinished)
		g.Expect(f).NotTo(gomega.BeNil())
		a := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadAdmitted)
		past := int64(ptr.Deref(wl.Status.AccumulatedPastExecutionTimeSeconds, 0))
		secs = (past + int64(f.LastTransitionTime.Sub(a.LastTransitionTime.Time)/time.Second)) * gpus
	})
	return secs
}

// stopPods is what the Job controller does once Kueue suspended a Job: its pods are deleted and it reports
// none active. envtest runs no Job controller, so the test writes that status.
func stopPods(t *testing.T, job *batchv1.Job) {
	t.Helper()
	ctx := context.Background()
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(job), job)).To(gomega.Succeed())
		g.Expect(ptr.Deref(job.Spec.Suspend, false)).To(gomega.BeTrue(), "Kueue suspends the Job")
		job.Status.Active, job.Status.Ready = 0, ptr.To[int32](0)
		g.Expect(c.Status().Update(ctx, job)).To(gomega.Succeed())
	})
}

func jobsOf(g gomega.Gomega, tj *aifv1.TrainingJob) []batchv1.Job {
	var jobs batchv1.JobList
	g.Expect(c.List(context.Background(), &jobs, client.InNamespace(tj.Namespace), client.MatchingLabels{aifv1.TrainingJobLabel: tj.Name})).To(gomega.Succeed())
	return jobs.Items
}

func envOf(job *batchv1.Job) map[string]string {
	out := map[string]string{}
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		out[e.Name] = e.Value
	}
	return out
}

// The whole life of a run: queued, admitted, running, succeeded, with conditions, admission and usage exactly as
// Kueue's workload tells, the same GPU-seconds in the tenant's ledger, and events for each step.
func TestLifecycleConditionsAndUsage(t *testing.T) {
	ctx := context.Background()
	ns := tenant(t, "life")
	tj := builders.TrainingJob(ns, "llm").Shape(2, 8).Obj()
	create(t, tj)
	job, wl := admittedJob(t, tj, 0)
	admittedAt, _ := framework.AdmittedAt(wl)
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "llm")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseAdmitted))
		g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, aifv1.ConditionAdmitted)).To(gomega.BeTrue())
		g.Expect(apimeta.IsStatusConditionFalse(got.Status.Conditions, aifv1.ConditionRunning)).To(gomega.BeTrue())
		g.Expect(got.Status.StartTime.Time.UTC()).To(gomega.Equal(admittedAt))
		g.Expect(got.Status.Usage.Attempts).To(gomega.HaveLen(1))
		g.Expect(got.Status.Usage.Attempts[0].GPUs).To(gomega.Equal(int32(16)))
	})

	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(framework.SetJobReady(ctx, c, job, 2)).To(gomega.Succeed()) }) // simulated
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "llm")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseRunning))
		g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, aifv1.ConditionRunning)).To(gomega.BeTrue())
	})

	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(framework.CompleteJob(ctx, c, job)).To(gomega.Succeed()) }) // simulated
	want := finishedSeconds(t, job, 16)
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "llm")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseSucceeded))
		// kubectl wait --for=condition=Succeeded: the condition is True for the current generation.
		s := apimeta.FindStatusCondition(got.Status.Conditions, aifv1.ConditionSucceeded)
		g.Expect(s).NotTo(gomega.BeNil())
		g.Expect(s.Status).To(gomega.Equal(metav1.ConditionTrue))
		g.Expect(s.ObservedGeneration).To(gomega.Equal(got.Generation))
		g.Expect(apimeta.IsStatusConditionFalse(got.Status.Conditions, aifv1.ConditionReconciling)).To(gomega.BeTrue())
		g.Expect(got.Status.Usage.GPUSeconds).To(gomega.Equal(want))
		g.Expect(got.Status.Usage.EnergyJoules).To(gomega.Equal(want * 700))
		g.Expect(got.Status.Record).NotTo(gomega.BeNil())
		g.Expect(got.Status.Record.Result).To(gomega.Equal(aifv1.PhaseSucceeded))
		g.Expect(got.Status.Record.GPUClass).To(gomega.Equal(builders.GPUClassH100))
		g.Expect(got.Status.Record.Images).To(gomega.Equal([]string{builders.TrainerImage}), "no kubelet reports a digest in envtest")

		tq := &aifv1.TenantQuota{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		g.Expect(tq.Status.Budget).NotTo(gomega.BeNil())
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(want), "the tenant's ledger counts the same seconds")

		var events eventsv1.EventList
		g.Expect(c.List(ctx, &events, client.InNamespace(ns))).To(gomega.Succeed())
		seen := map[string]bool{}
		for _, e := range events.Items {
			if e.Regarding.Name == "llm" && e.Regarding.Kind == "TrainingJob" {
				seen[e.Action] = true
			}
		}
		g.Expect(seen).To(gomega.HaveKey(string(aifv1.PhaseAdmitted)))
		g.Expect(seen).To(gomega.HaveKey(string(aifv1.PhaseRunning)))
		g.Expect(seen).To(gomega.HaveKey(string(aifv1.PhaseSucceeded)))
	})
}

// A run beyond the free quota shows Kueue's reason in its own status within 2 seconds, and is admitted once the
// quota frees.
func TestOverQuotaShowsKueuesReasonThenRuns(t *testing.T) {
	ctx := context.Background()
	ns := tenant(t, "busy")
	first := builders.TrainingJob(ns, "first").Shape(2, 8).Obj()
	create(t, first)
	job, _ := admittedJob(t, first, 0)

	second := builders.TrainingJob(ns, "second").Shape(1, 8).Obj()
	create(t, second)
	framework.EventuallyWithin(t, 2*time.Second, func(g gomega.Gomega) {
		got := get(g, ns, "second")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseQueued))
		g.Expect(got.Status.Message).To(gomega.ContainSubstring("insufficient unused quota for nvidia.com/gpu in flavor h100-80gb, 8 more needed"))
		g.Expect(got.Status.Queue.ClusterQueue).To(gomega.BeEmpty())
		g.Expect(apimeta.IsStatusConditionFalse(got.Status.Conditions, aifv1.ConditionAdmitted)).To(gomega.BeTrue())
	})

	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(framework.CompleteJob(ctx, c, job)).To(gomega.Succeed()) }) // simulated
	admittedJob(t, second, 0)
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "second")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseAdmitted))
		g.Expect(got.Status.Admission.GPUs).To(gomega.Equal(int32(8)))
	})
}

// A higher-priority run of the same tenant preempts a running one: the victim shows Kueue's reason, its Job is
// suspended, and it is admitted again later as the same attempt with the same checkpoint directory.
func TestPreemptedRunResumesWithItsCheckpoint(t *testing.T) {
	ctx := context.Background()
	ns := tenant(t, "prio")
	checkpoint(t, ns, "ckpt", "/prio/ckpt")
	low := builders.TrainingJob(ns, "low").Shape(2, 8).Priority("low").Checkpoint("ckpt", "/ckpt").Obj()
	create(t, low)
	lowJob, _ := admittedJob(t, low, 0)
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(framework.SetJobReady(ctx, c, lowJob, 2)).To(gomega.Succeed()) }) // simulated
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(get(g, ns, "low").Status.Phase).To(gomega.Equal(aifv1.PhaseRunning)) })

	create(t, builders.TrainingJob(ns, "high").Shape(2, 8).Priority("high").Obj())
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "low")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseQueued))
		g.Expect(got.Status.Reason).To(gomega.Equal(aifv1.ReasonPreempted))
		g.Expect(got.Status.Message).To(gomega.ContainSubstring("Preempted"))
		g.Expect(got.Status.Admission).To(gomega.BeNil())
	})
	stopPods(t, lowJob)
	high := get(gomega.NewWithT(t), ns, "high")
	highJob, _ := admittedJob(t, high, 0)
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(framework.CompleteJob(ctx, c, highJob)).To(gomega.Succeed()) }) // simulated

	job, _ := admittedJob(t, low, 0)
	if job.UID != lowJob.UID || envOf(job)["CHECKPOINT_DIR"] != "/ckpt" || envOf(job)["AIFACTORY_RESTART_COUNT"] != "0" {
		t.Fatalf("the preempted run must resume as the same attempt with the same checkpoint: uid %s, env %v", job.UID, envOf(job))
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "low")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseAdmitted))
		g.Expect(got.Status.Restarts).To(gomega.BeZero())
		g.Expect(got.Status.Usage.Attempts).To(gomega.HaveLen(1))
		g.Expect(jobsOf(g, got)).To(gomega.HaveLen(1))
	})
}

// A worker failure starts a new attempt with a fresh Job and the restart count; after maxRestarts the run fails,
// with the usage of both attempts summed.
func TestWorkerFailureRestartsThenFails(t *testing.T) {
	ctx := context.Background()
	ns := tenant(t, "flaky")
	checkpoint(t, ns, "ckpt", "/flaky/ckpt")
	tj := builders.TrainingJob(ns, "flaky").Shape(2, 8).MaxRestarts(1).Checkpoint("ckpt", "/ckpt").Obj()
	create(t, tj)
	job0, _ := admittedJob(t, tj, 0)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(framework.FailJob(ctx, c, job0, "Pod flaky-0-1 failed with exit code 137")).To(gomega.Succeed()) // simulated
	})
	used0 := finishedSeconds(t, job0, 16)
	job1, _ := admittedJob(t, tj, 1)
	if e := envOf(job1); e["AIFACTORY_RESTART_COUNT"] != "1" || e["CHECKPOINT_DIR"] != "/ckpt" || e["MASTER_ADDR"] != "flaky-1-0.flaky" {
		t.Fatalf("second attempt env: %v", e)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "flaky")
		g.Expect(got.Status.Restarts).To(gomega.Equal(int32(1)))
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseAdmitted))
		g.Expect(got.Status.Usage.Attempts).To(gomega.HaveLen(2))
		g.Expect(got.Status.Usage.Attempts[0].GPUSeconds).To(gomega.Equal(used0))
	})
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(framework.FailJob(ctx, c, job1, "Pod flaky-1-0 failed with exit code 1")).To(gomega.Succeed()) // simulated
	})
	used1 := finishedSeconds(t, job1, 16)
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "flaky")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseFailed))
		g.Expect(got.Status.Reason).To(gomega.Equal(aifv1.ReasonRestartsExhausted))
		g.Expect(got.Status.Message).To(gomega.ContainSubstring("exit code 1"))
		g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, aifv1.ConditionFailed)).To(gomega.BeTrue())
		g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, aifv1.ConditionStalled)).To(gomega.BeTrue())
		g.Expect(got.Status.Usage.GPUSeconds).To(gomega.Equal(used0 + used1))
		g.Expect(got.Status.Record.Datasets).To(gomega.Equal([]aifv1.DatasetRecord{{Name: "ckpt", Filesystem: builders.FilesystemScratch, Path: "/flaky/ckpt", Access: aifv1.ReadWrite}}))
		g.Expect(jobsOf(g, got)).To(gomega.HaveLen(2), "failed attempts keep their Jobs for their logs")
	})
	framework.Consistently(t, func(g gomega.Gomega) {
		g.Expect(jobsOf(g, tj)).To(gomega.HaveLen(2), "no third attempt")
	})
}

// Suspending a running run releases its quota through Kueue and keeps its attempt; resuming queues it again.
func TestSuspendAndResume(t *testing.T) {
	ctx := context.Background()
	ns := tenant(t, "pause")
	tj := builders.TrainingJob(ns, "pause").Shape(2, 8).Obj()
	create(t, tj)
	job, _ := admittedJob(t, tj, 0)
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(framework.SetJobReady(ctx, c, job, 2)).To(gomega.Succeed()) }) // simulated
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(get(g, ns, "pause").Status.Phase).To(gomega.Equal(aifv1.PhaseRunning)) })

	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "pause")
		got.Spec.Suspend = true
		g.Expect(c.Update(ctx, got)).To(gomega.Succeed())
	})
	stopPods(t, job)
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "pause")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseSuspended))
		g.Expect(got.Status.Message).To(gomega.ContainSubstring("holds no quota"))
		wl, err := framework.WorkloadOf(ctx, c, job)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(ptr.Deref(wl.Spec.Active, true)).To(gomega.BeFalse())
		past := int64(ptr.Deref(wl.Status.AccumulatedPastExecutionTimeSeconds, 0))
		g.Expect(got.Status.Usage.GPUSeconds).To(gomega.Equal(past*16), "the admission before the suspension is counted")
		cq := &kueue.ClusterQueue{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: "tenant-" + ns}, cq)).To(gomega.Succeed())
		g.Expect(cq.Status.ReservingWorkloads).To(gomega.BeZero())
	})

	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "pause")
		got.Spec.Suspend = false
		g.Expect(c.Update(ctx, got)).To(gomega.Succeed())
	})
	again, _ := admittedJob(t, tj, 0)
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "pause")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseAdmitted))
		g.Expect(got.Status.Usage.Attempts).To(gomega.HaveLen(1))
	})
	if again.UID != job.UID {
		t.Fatal("a resumed run keeps its Job")
	}
}

// A queued run that is changed gets a new attempt with the new shape; the old Job goes, and no restart is
// counted.
func TestChangeWhileQueuedRequeuesTheNewShape(t *testing.T) {
	ctx := context.Background()
	ns := tenant(t, "reshape")
	blocker := builders.TrainingJob(ns, "blocker").Shape(2, 8).Obj()
	create(t, blocker)
	admittedJob(t, blocker, 0)
	tj := builders.TrainingJob(ns, "waits").Shape(2, 8).Obj()
	create(t, tj)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(get(g, ns, "waits").Status.Reason).To(gomega.Equal(aifv1.ReasonPending))
		g.Expect(get(g, ns, "waits").Status.Message).To(gomega.ContainSubstring("insufficient"))
	})
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "waits")
		got.Spec.Nodes = 1
		g.Expect(c.Update(ctx, got)).To(gomega.Succeed())
	})
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "waits")
		g.Expect(got.Status.Restarts).To(gomega.BeZero())
		g.Expect(got.Status.Usage.Attempts).To(gomega.HaveLen(2))
		jobs := jobsOf(g, got)
		g.Expect(jobs).To(gomega.HaveLen(1))
		g.Expect(jobs[0].Name).To(gomega.Equal(trainingjob.JobName(tj, 1)))
		g.Expect(*jobs[0].Spec.Parallelism).To(gomega.Equal(int32(1)))
		g.Expect(got.Status.GPUs).To(gomega.Equal(int32(8)))
	})
}

// A run that reaches maxRunDuration is stopped through Kueue and fails with the reason.
func TestMaxRunDurationStopsTheRun(t *testing.T) {
	ns := tenant(t, "deadline")
	tj := builders.TrainingJob(ns, "short").Shape(1, 8).MaxRunDuration(2 * time.Second).Obj()
	create(t, tj)
	job, _ := admittedJob(t, tj, 0)
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "short")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseFailed))
		g.Expect(got.Status.Reason).To(gomega.Equal(aifv1.ReasonDeadlineExceeded))
		g.Expect(got.Status.Usage.GPUSeconds).To(gomega.BeNumerically(">=", 2*8))
		wl, err := framework.WorkloadOf(context.Background(), c, job)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(ptr.Deref(wl.Spec.Active, true)).To(gomega.BeFalse(), "the workload is deactivated")
	})
	stopPods(t, job)
	// The stopped run's charge holds still: Kueue keeps only the last admission's seconds once it stops a
	// workload at its maximum execution time, and the operator adds its own record back exactly once.
	charge := func(g gomega.Gomega) (int64, string) {
		tq := &aifv1.TenantQuota{}
		g.Expect(c.Get(context.Background(), client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		g.Expect(tq.Status.Budget).NotTo(gomega.BeNil())
		g.Expect(tq.Status.Budget.ReservedGPUSeconds).To(gomega.BeZero())
		wl, err := framework.WorkloadOf(context.Background(), c, job)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		return tq.Status.Budget.UsedGPUSeconds, wl.Annotations[accounting.PastSecondsAnnotation]
	}
	var used int64
	var record string
	framework.Eventually(t, func(g gomega.Gomega) {
		used, record = charge(g)
		g.Expect(used).To(gomega.BeNumerically(">=", 2*8))
	})
	framework.Consistently(t, func(g gomega.Gomega) {
		u, r := charge(g)
		g.Expect(u).To(gomega.Equal(used), "the tenant's use of a stopped run")
		g.Expect(r).To(gomega.Equal(record), "the workload's record of its earlier admissions")
	})
}

// A manager restart in each phase creates no second Job and keeps the status.
func TestManagerRestartInEachPhase(t *testing.T) {
	ctx := context.Background()
	ns := tenant(t, "restart")
	blocker := builders.TrainingJob(ns, "blocker").Shape(2, 8).Obj()
	create(t, blocker)
	blockerJob, _ := admittedJob(t, blocker, 0)
	tj := builders.TrainingJob(ns, "steady").Shape(2, 8).MaxRestarts(1).Obj()
	create(t, tj)
	restart := func(phase aifv1.TrainingJobPhase, jobs int) {
		t.Helper()
		var before *aifv1.TrainingJob
		framework.Eventually(t, func(g gomega.Gomega) {
			before = get(g, ns, "steady")
			g.Expect(before.Status.Phase).To(gomega.Equal(phase))
			g.Expect(jobsOf(g, before)).To(gomega.HaveLen(jobs))
			// settled: the operator has seen Kueue's workload of the current attempt
			g.Expect(before.Status.Queue).NotTo(gomega.BeNil())
			g.Expect(before.Status.Queue.Workload).To(gomega.HavePrefix("job-" + trainingjob.JobName(tj, trainingjob.CurrentAttempt(&before.Status))))
		})
		if err := op.Stop(); err != nil {
			t.Fatal(err)
		}
		var err error
		if op, err = env.StartOperator(cfg, clock.RealClock{}); err != nil {
			t.Fatal(err)
		}
		framework.Consistently(t, func(g gomega.Gomega) {
			got := get(g, ns, "steady")
			g.Expect(got.Status.Phase).To(gomega.Equal(phase))
			g.Expect(got.Status.Usage).To(gomega.Equal(before.Status.Usage))
			g.Expect(got.Status.Restarts).To(gomega.Equal(before.Status.Restarts))
			g.Expect(jobsOf(g, got)).To(gomega.HaveLen(jobs))
		})
	}
	restart(aifv1.PhaseQueued, 1)
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(framework.CompleteJob(ctx, c, blockerJob)).To(gomega.Succeed()) }) // simulated

	job0, _ := admittedJob(t, tj, 0)
	restart(aifv1.PhaseAdmitted, 1)
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(framework.SetJobReady(ctx, c, job0, 2)).To(gomega.Succeed()) }) // simulated
	restart(aifv1.PhaseRunning, 1)
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(framework.FailJob(ctx, c, job0, "exit code 137")).To(gomega.Succeed()) }) // simulated
	job1, _ := admittedJob(t, tj, 1)
	restart(aifv1.PhaseAdmitted, 2)
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(framework.CompleteJob(ctx, c, job1)).To(gomega.Succeed()) }) // simulated
	restart(aifv1.PhaseSucceeded, 2)
}

// The operator is killed right after it records a new attempt in the run's status, and right after it creates
// the attempt's Job; started again, it creates no second Job, and the Job carries what is left of the run's
// bound as Kueue's maximum execution time.
func TestCrashAfterTheAttemptOrItsJob(t *testing.T) {
	ctx := context.Background()
	points := map[string]func(ns string) framework.CrashAfter{
		"attempt recorded": func(ns string) framework.CrashAfter {
			return func(w framework.Write) bool {
				tj, ok := w.Object.(*aifv1.TrainingJob)
				return ok && tj.Namespace == ns && w.Verb == "status update" && tj.Status.Usage != nil && len(tj.Status.Usage.Attempts) == 1
			}
		},
		"job created": func(ns string) framework.CrashAfter {
			return func(w framework.Write) bool {
				job, ok := w.Object.(*batchv1.Job)
				return ok && job.Namespace == ns && w.Verb == "create"
			}
		},
	}
	for _, point := range []string{"attempt recorded", "job created"} {
		t.Run(point, func(t *testing.T) {
			ns := tenant(t, "crash-"+strings.ReplaceAll(point, " ", "-"))
			if err := op.Stop(); err != nil {
				t.Fatal(err)
			}
			restarted := false
			crashing, err := env.StartCrashingOperator(cfg, clock.RealClock{}, points[point](ns))
			if err != nil {
				t.Fatal(err)
			}
			// A subtest that fails before the restart below leaves the operator running for the tests after it.
			t.Cleanup(func() {
				_ = crashing.Stop()
				if !restarted {
					if op, err = env.StartOperator(cfg, clock.RealClock{}); err != nil {
						t.Error(err)
					}
				}
			})
			tj := builders.TrainingJob(ns, "run").Shape(1, 8).MaxRunDuration(150 * time.Second).Obj()
			// The new manager's webhook server answers a moment after its start.
			framework.Eventually(t, func(g gomega.Gomega) { g.Expect(c.Create(ctx, tj.DeepCopy())).To(gomega.Succeed()) })
			select {
			case <-crashing.Crashed():
			case <-time.After(framework.Timeout):
				got := &aifv1.TrainingJob{}
				_ = c.Get(ctx, client.ObjectKeyFromObject(tj), got)
				t.Fatalf("the crash point was never reached; the run is %s/%s: %s", got.Status.Phase, got.Status.Reason, got.Status.Message)
			}
			_ = crashing.Stop()
			if op, err = env.StartOperator(cfg, clock.RealClock{}); err != nil {
				t.Fatal(err)
			}
			restarted = true
			job, _ := admittedJob(t, tj, 0)
			if got := job.Labels[trainingjob.MaxExecTimeLabel]; got != "150" {
				t.Fatalf("max-exec-time label %q, want 150", got)
			}
			framework.Consistently(t, func(g gomega.Gomega) {
				g.Expect(jobsOf(g, get(g, ns, "run"))).To(gomega.HaveLen(1))
				g.Expect(get(g, ns, "run").Status.Usage.Attempts).To(gomega.HaveLen(1))
			})
			framework.Eventually(t, func(g gomega.Gomega) { g.Expect(framework.CompleteJob(ctx, c, job)).To(gomega.Succeed()) }) // simulated
			framework.Eventually(t, func(g gomega.Gomega) {
				g.Expect(get(g, ns, "run").Status.Phase).To(gomega.Equal(aifv1.PhaseSucceeded))
			})
		})
	}
}
