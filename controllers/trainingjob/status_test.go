package trainingjob

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"
	utiltestingapi "sigs.k8s.io/kueue/pkg/util/testing/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }

// wl is a Kueue workload of a 2-node run with 8 GPUs per node.
type wl struct{ *kueue.Workload }

func workload() wl {
	return wl{utiltestingapi.MakeWorkload("job-run-0-abcde", "").Creation(t0).
		PodSets(*utiltestingapi.MakePodSet("main", 2).Request("nvidia.com/gpu", "8").Obj()).Obj()}
}

func (w wl) cond(t string, ok bool, reason, msg string, when time.Duration) wl {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	apimeta.SetStatusCondition(&w.Status.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, LastTransitionTime: at(when)})
	return w
}

func (w wl) pending() wl {
	return w.cond(kueue.WorkloadQuotaReserved, false, "Pending", "insufficient unused quota for nvidia.com/gpu in flavor h100-80gb, 8 more needed", 0)
}

func (w wl) admitted(when time.Duration) wl {
	// Kueue's admission carries each pod set's count and its total requests.
	ps := w.Spec.PodSets[0]
	gpus := ps.Template.Spec.Containers[0].Resources.Requests["nvidia.com/gpu"]
	w.Status.Admission = utiltestingapi.MakeAdmission("tenant-medai", "main").PodSets(utiltestingapi.MakePodSetAssignment("main").
		Flavor("nvidia.com/gpu", "h100-80gb").Count(ps.Count).ResourceUsage("nvidia.com/gpu", fmt.Sprint(gpus.Value()*int64(ps.Count))).Obj()).Obj()
	return w.cond(kueue.WorkloadQuotaReserved, true, "QuotaReserved", "", when).cond(kueue.WorkloadAdmitted, true, "Admitted", "", when)
}

func (w wl) preempted(when time.Duration, past int32) wl {
	w.Status.AccumulatedPastExecutionTimeSeconds = ptr.To(past)
	w.Status.Admission = nil
	return w.cond(kueue.WorkloadAdmitted, false, "NoReservation", "", when).
		cond(kueue.WorkloadQuotaReserved, false, "Pending", "couldn't assign flavors", when).
		cond(kueue.WorkloadEvicted, true, kueue.WorkloadEvictedByPreemption, "Preempted to accommodate a workload due to prioritization in the ClusterQueue", when)
}

// waitingForBudget is a workload whose quota Kueue reserved and whose budget check holds its admission.
func (w wl) waitingForBudget(msg string) wl {
	w = w.admitted(0)
	w.Status.AdmissionChecks = []kueue.AdmissionCheckState{{Name: aifv1.BudgetCheckName, State: kueue.CheckStatePending, Message: msg}}
	return w.cond(kueue.WorkloadAdmitted, false, "UnsatisfiedChecks", "The workload has not all checks ready", 0)
}

// stoppedAtBound is a workload the tenant's budget stopped at its run bound.
func (w wl) stoppedAtBound(bound string) wl {
	w.Spec.Active = ptr.To(false)
	w.Annotations = map[string]string{aifv1.BoundReachedAnnotation: bound}
	return w
}

func (w wl) finished(when time.Duration) wl {
	return w.cond(kueue.WorkloadFinished, true, "Succeeded", "", when)
}

// inactive is a workload the operator deactivated (suspend, deadline).
func (w wl) inactive() wl {
	w.Spec.Active = ptr.To(false)
	w.Annotations = map[string]string{aifv1.DeactivatedAnnotation: aifv1.ReasonSuspended}
	return w
}

// deactivatedByKueue is a workload Kueue itself deactivated, here after too many requeues.
func (w wl) deactivatedByKueue() wl {
	w.Spec.Active = ptr.To(false)
	return w.cond(kueue.WorkloadEvicted, true, "DeactivatedDueToRequeuingLimitExceeded", "exceeded the maximum number of re-queuing retries", 0)
}

func attemptJob(ready int32, shape string, conds ...batchv1.JobCondition) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "run-0", Annotations: map[string]string{aifv1.ShapeAnnotation: shape}},
		Status: batchv1.JobStatus{Ready: ptr.To(ready), Conditions: conds}}
}

func finishing(j *batchv1.Job, succeeded int32) *batchv1.Job {
	j.Status.Succeeded = succeeded
	return j
}

func jobCond(t batchv1.JobConditionType, when time.Duration) batchv1.JobCondition {
	return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Message: "Pod run-0-1 failed with exit code 137", LastTransitionTime: at(when)}
}

func pod(index, node, imageID string) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{batchv1.JobCompletionIndexAnnotation: index}},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "trainer", ImageID: imageID}}},
	}
}

// status is a TrainingJob status with the given attempts, as an earlier pass left it.
func status(phase aifv1.TrainingJobPhase, restarts int32, attempts ...aifv1.AttemptUsage) aifv1.TrainingJobStatus {
	st := aifv1.TrainingJobStatus{Phase: phase, Reason: "Earlier", Message: "as an earlier pass saw it", Restarts: restarts}
	if len(attempts) > 0 {
		st.Usage = &aifv1.Usage{Attempts: attempts}
	}
	return st
}

func TestStep(t *testing.T) {
	base := builders.TrainingJob("ns", "run").Shape(2, 8).MaxRestarts(1).Dataset("xray", "/data").Obj()
	base.Generation = 2
	suspended := base.DeepCopy()
	suspended.Spec.Suspend = true
	bounded := base.DeepCopy()
	bounded.Spec.MaxRunDuration = &metav1.Duration{Duration: time.Hour}
	accepted := Verdict{Accepted: true, Reason: aifv1.ReasonAccepted, Message: "queued"}
	classes := map[string]classes.Class{"h100-80gb": {Name: "h100-80gb", PowerWatts: 700}}
	dsm := builders.DatasetMount("ns", "xray", "/medai/xray").Obj()
	dsm.Spec.Version = "v3"
	dsm.Status.Manifest = &aifv1.Manifest{Digest: "sha256:abc"}
	first := aifv1.AttemptUsage{Attempt: 0}
	running0 := aifv1.AttemptUsage{Attempt: 0, GPUs: 16, GPUClass: "h100-80gb", AdmittedAt: ptr.To(at(time.Minute))}
	digest := "registry.example.eu/medai/trainer@sha256:0123"

	cases := []struct {
		name   string
		tj     *aifv1.TrainingJob
		old    aifv1.TrainingJobStatus
		obs    Observed
		now    time.Duration
		phase  aifv1.TrainingJobPhase
		reason string
		act    Actions
		check  func(t *testing.T, st aifv1.TrainingJobStatus)
	}{{
		name: "not accepted: nothing goes to Kueue", tj: base,
		obs:   Observed{Verdict: Verdict{Reason: aifv1.ReasonDatasetNotReady, Message: "DatasetMount xray does not exist"}},
		phase: aifv1.PhasePending, reason: aifv1.ReasonDatasetNotReady,
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if st.Usage != nil || !apimeta.IsStatusConditionFalse(st.Conditions, aifv1.ConditionAccepted) {
				t.Errorf("usage %+v, conditions %+v", st.Usage, st.Conditions)
			}
		},
	}, {
		name: "accepted: attempt 0 is opened, then its Job is created", tj: base,
		obs:   Observed{Verdict: accepted, Shape: "s1"},
		phase: aifv1.PhaseQueued, reason: aifv1.ReasonPending, act: Actions{CreateJob: true},
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if diff := cmp.Diff([]aifv1.AttemptUsage{first}, st.Usage.Attempts); diff != "" {
				t.Error(diff)
			}
		},
	}, {
		name: "suspended before it was queued: no Job", tj: suspended,
		obs:   Observed{Verdict: accepted, Shape: "s1"},
		phase: aifv1.PhaseSuspended, reason: aifv1.ReasonSuspended,
	}, {
		name: "Job created, Kueue has no workload yet", tj: base, old: status(aifv1.PhaseQueued, 0, first),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1")},
		phase: aifv1.PhaseQueued, reason: aifv1.ReasonPending,
	}, {
		name: "queued when its dataset is revoked: the Job is withdrawn", tj: base, old: status(aifv1.PhaseQueued, 0, first),
		obs: Observed{Verdict: Verdict{Reason: aifv1.ReasonDatasetRevoked, Message: "DatasetMount xray is NotPermitted: gone"},
			Shape: "s1", Job: attemptJob(0, "s1"), Workload: workload().pending().Workload},
		phase: aifv1.PhasePending, reason: aifv1.ReasonDatasetRevoked, act: Actions{DeleteJobs: []*batchv1.Job{attemptJob(0, "s1")}},
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if len(st.Usage.Attempts) != 2 || st.Usage.Attempts[0].EndedAt == nil || !strings.HasSuffix(st.Message, "the queued Job was withdrawn") {
				t.Errorf("attempts %+v, message %q", st.Usage.Attempts, st.Message)
			}
		},
	}, {
		name: "admitted when its dataset is revoked: the running Job is followed", tj: base, old: status(aifv1.PhaseRunning, 0, first),
		obs: Observed{Verdict: Verdict{Reason: aifv1.ReasonDatasetRevoked, Message: "DatasetMount xray is NotPermitted: gone"},
			Shape: "s1", Job: attemptJob(0, "s1"), Workload: workload().admitted(time.Minute).Workload},
		phase: aifv1.PhaseAdmitted, reason: aifv1.ReasonWorkersStarting,
	}, {
		name: "waiting for quota with Kueue's message", tj: base, old: status(aifv1.PhaseQueued, 0, first),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1"), Workload: workload().pending().Workload},
		phase: aifv1.PhaseQueued, reason: aifv1.ReasonPending,
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			want := "insufficient unused quota for nvidia.com/gpu in flavor h100-80gb, 8 more needed"
			if st.Message != want || st.Queue.Message != want || st.Queue.Workload != "job-run-0-abcde" {
				t.Errorf("message %q, queue %+v", st.Message, st.Queue)
			}
		},
	}, {
		name: "admitted, one of two workers runs", tj: base, old: status(aifv1.PhaseQueued, 0, first),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(1, "s1"), Workload: workload().admitted(time.Minute).Workload, Pods: []corev1.Pod{pod("1", "gpu-b", ""), pod("0", "gpu-a", "")}},
		phase: aifv1.PhaseAdmitted, reason: aifv1.ReasonWorkersStarting,
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if diff := cmp.Diff(&aifv1.AdmissionStatus{GPUClass: "h100-80gb", GPUs: 16, Nodes: []string{"gpu-a", "gpu-b"}}, st.Admission); diff != "" {
				t.Error(diff)
			}
			if diff := cmp.Diff([]aifv1.AttemptUsage{running0}, st.Usage.Attempts); diff != "" {
				t.Error(diff)
			}
			if !st.StartTime.Equal(ptr.To(at(time.Minute))) || st.Queue.ClusterQueue != "tenant-medai" || !apimeta.IsStatusConditionTrue(st.Conditions, aifv1.ConditionAdmitted) {
				t.Errorf("startTime %v, queue %+v", st.StartTime, st.Queue)
			}
		},
	}, {
		name: "all workers run; the running admission is not yet counted", tj: base, old: status(aifv1.PhaseAdmitted, 0, running0),
		obs: Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(2, "s1"), Workload: workload().admitted(time.Minute).Workload}, now: time.Hour,
		phase: aifv1.PhaseRunning, reason: aifv1.ReasonWorkersRunning,
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if st.Usage.GPUSeconds != 0 || !apimeta.IsStatusConditionTrue(st.Conditions, aifv1.ConditionRunning) {
				t.Errorf("usage %+v", st.Usage)
			}
		},
	}, {
		name: "one worker finished, the other runs: still Running", tj: base, old: status(aifv1.PhaseRunning, 0, running0),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: finishing(attemptJob(1, "s1"), 1), Workload: workload().admitted(time.Minute).Workload},
		phase: aifv1.PhaseRunning, reason: aifv1.ReasonWorkersRunning,
	}, {
		name: "preempted: back in the queue with Kueue's reason, the admission so far counted", tj: base, old: status(aifv1.PhaseRunning, 0, running0),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1"), Workload: workload().admitted(time.Minute).preempted(11*time.Minute, 600).Workload, Classes: classes},
		phase: aifv1.PhaseQueued, reason: aifv1.ReasonPreempted,
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if st.Usage.GPUSeconds != 600*16 || st.Usage.EnergyJoules != 600*16*700 || st.Admission != nil {
				t.Errorf("usage %+v, admission %+v", st.Usage, st.Admission)
			}
		},
	}, {
		name: "held by the tenant's spent budget: the budget is the reason", tj: base, old: status(aifv1.PhaseQueued, 0, first),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1"), Workload: workload().pending().Workload, Hold: "tenant medai: 2.00 of 2 GPU-hours used"},
		phase: aifv1.PhaseQueued, reason: aifv1.ReasonBudgetExhausted,
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if st.Message != "tenant medai: 2.00 of 2 GPU-hours used" || st.Queue.Message == st.Message {
				t.Errorf("message %q, Kueue's %q", st.Message, st.Queue.Message)
			}
		},
	}, {
		name: "Job complete, Kueue has not finished the workload: wait for its end time", tj: base, old: status(aifv1.PhaseRunning, 0, running0),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1", jobCond(batchv1.JobComplete, 61*time.Minute)), Workload: workload().admitted(time.Minute).Workload},
		phase: aifv1.PhaseRunning,
	}, {
		name: "succeeded: usage, energy and the record", tj: base, old: status(aifv1.PhaseRunning, 0, running0),
		obs: Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1", jobCond(batchv1.JobComplete, 61*time.Minute)), Workload: workload().admitted(time.Minute).finished(61 * time.Minute).Workload,
			Pods: []corev1.Pod{pod("0", "gpu-a", "docker-pullable://"+digest), pod("1", "gpu-b", digest)}, Classes: classes, DatasetMounts: map[string]*aifv1.DatasetMount{"xray": dsm}},
		now:   62 * time.Minute,
		phase: aifv1.PhaseSucceeded, reason: aifv1.ReasonCompleted,
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if st.Usage.GPUSeconds != 3600*16 || st.Usage.EnergyJoules != 3600*16*700 || !st.Usage.Attempts[0].EndedAt.Equal(ptr.To(at(61*time.Minute))) {
				t.Errorf("usage %+v", st.Usage)
			}
			want := &aifv1.RunRecord{Images: []string{digest}, GPUClass: "h100-80gb", GPUs: 16, Nodes: []string{"gpu-a", "gpu-b"},
				StartTime: st.StartTime, CompletionTime: ptr.To(at(62 * time.Minute)), Result: aifv1.PhaseSucceeded,
				Datasets: []aifv1.DatasetRecord{{Name: "xray", Filesystem: builders.FilesystemData, Path: "/medai/xray", Access: aifv1.ReadOnly, Version: "v3", ManifestDigest: "sha256:abc"}}}
			if diff := cmp.Diff(want, st.Record); diff != "" {
				t.Error(diff)
			}
			if !apimeta.IsStatusConditionTrue(st.Conditions, aifv1.ConditionSucceeded) || apimeta.IsStatusConditionTrue(st.Conditions, aifv1.ConditionReconciling) {
				t.Errorf("conditions %+v", st.Conditions)
			}
		},
	}, {
		name: "a worker failed with restarts left: a new attempt", tj: base, old: status(aifv1.PhaseRunning, 0, running0),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1", jobCond(batchv1.JobFailed, 11*time.Minute)), Workload: workload().admitted(time.Minute).finished(11 * time.Minute).Workload},
		phase: aifv1.PhaseRestarting, reason: aifv1.ReasonWorkerFailed, act: Actions{CreateJob: true},
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			ended := running0
			ended.GPUSeconds, ended.EndedAt = 600*16, ptr.To(at(11*time.Minute))
			if diff := cmp.Diff([]aifv1.AttemptUsage{ended, {Attempt: 1}}, st.Usage.Attempts); diff != "" {
				t.Error(diff)
			}
			if st.Restarts != 1 || st.Admission != nil {
				t.Errorf("restarts %d", st.Restarts)
			}
		},
	}, {
		name: "the restarted attempt waits for Kueue", tj: base, old: status(aifv1.PhaseRestarting, 1, running0, aifv1.AttemptUsage{Attempt: 1}),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1"), Workload: workload().pending().Workload},
		phase: aifv1.PhaseRestarting, reason: aifv1.ReasonPending,
	}, {
		name: "a worker failed after the last restart: Failed", tj: base, old: status(aifv1.PhaseRunning, 1, running0, aifv1.AttemptUsage{Attempt: 1}),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1", jobCond(batchv1.JobFailed, 11*time.Minute)), Workload: workload().admitted(time.Minute).finished(11 * time.Minute).Workload},
		phase: aifv1.PhaseFailed, reason: aifv1.ReasonRestartsExhausted,
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if !apimeta.IsStatusConditionTrue(st.Conditions, aifv1.ConditionStalled) || !apimeta.IsStatusConditionTrue(st.Conditions, aifv1.ConditionFailed) || st.Record.Result != aifv1.PhaseFailed {
				t.Errorf("conditions %+v", st.Conditions)
			}
		},
	}, {
		name: "running within maxRunDuration: back at the deadline", tj: bounded, old: status(aifv1.PhaseRunning, 0, running0),
		obs: Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(2, "s1"), Workload: workload().admitted(time.Minute).Workload, Bound: ptr.To(time.Hour)}, now: 41 * time.Minute,
		phase: aifv1.PhaseRunning, reason: aifv1.ReasonWorkersRunning, act: Actions{RequeueAfter: 20 * time.Minute},
	}, {
		name: "maxRunDuration used up: stopped and Failed", tj: bounded, old: status(aifv1.PhaseRunning, 0, running0),
		obs: Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(2, "s1"), Workload: workload().admitted(time.Minute).Workload, Bound: ptr.To(time.Hour)}, now: 61 * time.Minute,
		phase: aifv1.PhaseFailed, reason: aifv1.ReasonDeadlineExceeded, act: Actions{SetActive: ptr.To(false), Deactivation: aifv1.ReasonDeadlineExceeded},
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if st.Usage.GPUSeconds != 3600*16 {
				t.Errorf("usage %+v", st.Usage)
			}
		},
	}, {
		name: "the tenant's default bound used up: stopped and Failed", tj: base, old: status(aifv1.PhaseRunning, 0, running0),
		obs: Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(2, "s1"), Workload: workload().admitted(time.Minute).Workload, Bound: ptr.To(30 * time.Minute)}, now: 31 * time.Minute,
		phase: aifv1.PhaseFailed, reason: aifv1.ReasonDeadlineExceeded, act: Actions{SetActive: ptr.To(false), Deactivation: aifv1.ReasonDeadlineExceeded},
	}, {
		name: "quota reserved, the budget check holds it: WaitingForBudget with the figures", tj: base, old: status(aifv1.PhaseQueued, 0, aifv1.AttemptUsage{}),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1"), Workload: workload().waitingForBudget("needs 16.00 GPU-hours (16 GPUs x 1h0m0s run bound)").Workload},
		phase: aifv1.PhaseQueued, reason: aifv1.ReasonWaitingForBudget,
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if !strings.Contains(st.Message, "needs 16.00 GPU-hours") || st.Admission != nil {
				t.Errorf("status %+v", st)
			}
		},
	}, {
		name: "stopped by the tenant's budget at its bound: Failed, DeadlineExceeded", tj: base, old: status(aifv1.PhaseRunning, 0, running0),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(2, "s1"), Workload: workload().admitted(time.Minute).stoppedAtBound("3600").Workload},
		phase: aifv1.PhaseFailed, reason: aifv1.ReasonDeadlineExceeded,
	}, {
		name: "suspended while admitted: Kueue is asked to stop it", tj: suspended, old: status(aifv1.PhaseRunning, 0, running0),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(2, "s1"), Workload: workload().admitted(time.Minute).Workload},
		phase: aifv1.PhaseSuspended, reason: aifv1.ReasonSuspended, act: Actions{SetActive: ptr.To(false), Deactivation: aifv1.ReasonSuspended},
	}, {
		name: "suspended and stopped: nothing more to do", tj: suspended, old: status(aifv1.PhaseSuspended, 0, running0),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1"), Workload: workload().inactive().preempted(11*time.Minute, 600).Workload},
		phase: aifv1.PhaseSuspended, reason: aifv1.ReasonSuspended,
	}, {
		name: "resumed: Kueue is asked to queue it again", tj: base, old: status(aifv1.PhaseSuspended, 0, running0),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1"), Workload: workload().inactive().preempted(11*time.Minute, 600).Workload},
		phase: aifv1.PhaseQueued, reason: aifv1.ReasonPending, act: Actions{SetActive: ptr.To(true)},
	}, {
		name: "deactivated by Kueue itself: not undone, the run fails with Kueue's reason", tj: base, old: status(aifv1.PhaseQueued, 0, running0),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1"), Workload: workload().preempted(11*time.Minute, 600).deactivatedByKueue().Workload},
		phase: aifv1.PhaseFailed, reason: aifv1.ReasonEvicted,
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if !strings.Contains(st.Message, "re-queuing") || st.Usage.GPUSeconds != 600*16 {
				t.Errorf("message %q, usage %+v", st.Message, st.Usage)
			}
		},
	}, {
		name: "a Job of an earlier attempt left unfinished is deleted", tj: base, old: status(aifv1.PhaseQueued, 0, first, aifv1.AttemptUsage{Attempt: 1}),
		obs:   Observed{Verdict: accepted, Shape: "s1", Job: attemptJob(0, "s1"), Workload: workload().pending().Workload, Superseded: []*batchv1.Job{attemptJob(0, "s0")}},
		phase: aifv1.PhaseQueued, reason: aifv1.ReasonPending, act: Actions{DeleteJobs: []*batchv1.Job{attemptJob(0, "s0")}},
	}, {
		name: "changed while queued: a new attempt with the new shape", tj: base, old: status(aifv1.PhaseQueued, 0, first),
		obs:   Observed{Verdict: accepted, Shape: "s2", Job: attemptJob(0, "s1"), Workload: workload().pending().Workload},
		phase: aifv1.PhaseQueued, reason: aifv1.ReasonPending, act: Actions{DeleteJobs: []*batchv1.Job{attemptJob(0, "s1")}, CreateJob: true},
		check: func(t *testing.T, st aifv1.TrainingJobStatus) {
			if len(st.Usage.Attempts) != 2 || st.Restarts != 0 {
				t.Errorf("attempts %+v, restarts %d", st.Usage.Attempts, st.Restarts)
			}
		},
	}, {
		name: "changed data status while admitted: the running Job is kept", tj: base, old: status(aifv1.PhaseRunning, 0, running0),
		obs:   Observed{Verdict: accepted, Shape: "s2", Job: attemptJob(2, "s1"), Workload: workload().admitted(time.Minute).Workload},
		phase: aifv1.PhaseRunning, reason: aifv1.ReasonWorkersRunning,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tj := tc.tj.DeepCopy()
			tj.Status = tc.old
			tc.obs.Now = t0.Add(tc.now)
			st, act := Step(tj, tc.obs)
			if st.Phase != tc.phase || st.Reason != tc.reason && tc.reason != "" || st.Message == "" && tc.reason != "" {
				t.Fatalf("got phase %s reason %s message %q", st.Phase, st.Reason, st.Message)
			}
			if diff := cmp.Diff(tc.act, act); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if st.GPUs != 16 || st.ObservedGeneration != 2 {
				t.Errorf("gpus %d, observedGeneration %d", st.GPUs, st.ObservedGeneration)
			}
			for _, c := range st.Conditions {
				if c.ObservedGeneration != 2 || c.Reason == "" {
					t.Errorf("condition %s without reason or observedGeneration", c.Type)
				}
			}
			end := done(st.Phase)
			settled := end || st.Phase == aifv1.PhaseSuspended // kstatus: nothing left to do until the spec changes
			if tc.reason != "" && (apimeta.IsStatusConditionTrue(st.Conditions, aifv1.ConditionReconciling) == settled || (st.CompletionTime != nil) != end || (st.Record != nil) != end) {
				t.Errorf("Reconciling, completionTime and record must follow the end of the run: %+v", st)
			}
			if tc.check != nil {
				tc.check(t, st)
			}
			again, _ := Step(&aifv1.TrainingJob{ObjectMeta: tj.ObjectMeta, Spec: tj.Spec, Status: st}, tc.obs)
			if !act.CreateJob && len(act.DeleteJobs) == 0 && !cmp.Equal(st, again) {
				t.Errorf("a second pass over the same observation changes the status:\n%s", cmp.Diff(st, again))
			}
		})
	}
}

func TestImagesPreferTheRuntimesDigest(t *testing.T) {
	tj := builders.TrainingJob("ns", "run").Containers(
		corev1.Container{Name: "trainer", Image: "trainer:1"}, corev1.Container{Name: "sidecar", Image: "trainer:1"}, corev1.Container{Name: "logger", Image: "fluent:2"}).Obj()
	pods := []corev1.Pod{{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
		{Name: "trainer", ImageID: "containerd://registry.example.eu/trainer@sha256:aa"}, {Name: "logger", ImageID: "sha256:bb"}}}}}
	got := images(tj, pods)
	want := []string{"registry.example.eu/trainer@sha256:aa", "trainer:1", "fluent:2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
}

// A refused child write is shown as Pending and Stalled with the API server's message. The next pass on the
// same spec keeps that status as it is (no status write, so no loop of writes) and plans the write again; a
// changed spec, or the Job existing at last, ends the refusal.
func TestRefusalStandsUntilTheWriteSucceeds(t *testing.T) {
	tj := builders.TrainingJob("ns", "run").Shape(2, 8).Obj()
	tj.Generation = 2
	accepted := Observed{Verdict: Verdict{Accepted: true, Reason: aifv1.ReasonAccepted, Message: "queued"}, Shape: "s1", Now: at(0).Time}
	first, _ := Step(tj, accepted)
	tj.Status = first
	refused := Refused(tj, errors.New(`creating job: jobs.batch "run-0" is forbidden: exceeded quota: no-jobs`))
	if refused.Phase != aifv1.PhasePending || refused.Reason != aifv1.ReasonChildRefused ||
		!strings.Contains(refused.Message, "exceeded quota: no-jobs") ||
		!apimeta.IsStatusConditionTrue(refused.Conditions, aifv1.ConditionStalled) ||
		!apimeta.IsStatusConditionFalse(refused.Conditions, aifv1.ConditionAccepted) {
		t.Fatalf("refused status %+v", refused)
	}
	tj.Status = refused
	again, act := Step(tj, accepted)
	if diff := cmp.Diff(refused, again); diff != "" {
		t.Errorf("the next pass changed the refused status (-want +got):\n%s", diff)
	}
	if !act.CreateJob {
		t.Error("the refused write is not planned again")
	}
	edited := tj.DeepCopy()
	edited.Generation = 3
	if st, _ := Step(edited, accepted); st.Reason == aifv1.ReasonChildRefused || apimeta.IsStatusConditionTrue(st.Conditions, aifv1.ConditionStalled) {
		t.Errorf("a changed spec keeps the refusal: %s %s", st.Reason, st.Message)
	}
	withJob := accepted
	withJob.Job = attemptJob(0, "s1")
	if st, _ := Step(tj, withJob); st.Reason == aifv1.ReasonChildRefused {
		t.Errorf("the Job exists, and the refusal stays: %s", st.Message)
	}
}
