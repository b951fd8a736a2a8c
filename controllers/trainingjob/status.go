package trainingjob

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// Observed is what one pass read of a TrainingJob's current attempt.
type Observed struct {
	Verdict  Verdict
	Job      *batchv1.Job
	Workload *kueue.Workload
}

// ComputeStatus derives the TrainingJob's status from its acceptance, Kueue's Workload and the Job. It starts
// from the old status so that transition times survive.
func ComputeStatus(tj *aifv1.TrainingJob, obs Observed) aifv1.TrainingJobStatus {
	st := *tj.Status.DeepCopy()
	st.ObservedGeneration = tj.Generation
	st.GPUs = tj.Spec.Nodes * tj.Spec.GPUsPerNode
	set := func(t string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: tj.Generation})
	}
	set(aifv1.ConditionAccepted, obs.Verdict.Accepted, obs.Verdict.Reason, obs.Verdict.Message)
	phase, reason, msg := phaseOf(tj, obs)
	st.Phase, st.Reason, st.Message = phase, reason, msg
	if obs.Workload != nil {
		st.Queue = &aifv1.QueueStatus{LocalQueue: tj.Spec.QueueName, Workload: obs.Workload.Name}
		if c := apimeta.FindStatusCondition(obs.Workload.Status.Conditions, kueue.WorkloadQuotaReserved); c != nil {
			st.Queue.Reason, st.Queue.Message = c.Reason, c.Message
		}
		if a := obs.Workload.Status.Admission; a != nil {
			st.Queue.ClusterQueue = string(a.ClusterQueue)
			st.Admission = admission(tj, a)
		}
	}
	admitted := phase == aifv1.PhaseAdmitted || phase == aifv1.PhaseRunning || phase == aifv1.PhaseSucceeded
	set(aifv1.ConditionAdmitted, admitted, reasonOr(admitted, aifv1.ReasonAdmitted, reason), msg)
	set(aifv1.ConditionRunning, phase == aifv1.PhaseRunning, reasonOr(phase == aifv1.PhaseRunning, aifv1.ReasonWorkersRunning, reason), msg)
	done := phase == aifv1.PhaseSucceeded || phase == aifv1.PhaseFailed
	set(aifv1.ConditionSucceeded, phase == aifv1.PhaseSucceeded, reason, msg)
	set(aifv1.ConditionFailed, phase == aifv1.PhaseFailed, reason, msg)
	set(aifv1.ConditionReconciling, !done, reason, msg)
	if done && st.CompletionTime == nil {
		now := metav1.Now()
		st.CompletionTime = &now
	}
	return st
}

func reasonOr(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

// phaseOf reads the run's phase: not accepted, waiting in Kueue, admitted, running, or finished.
func phaseOf(tj *aifv1.TrainingJob, obs Observed) (aifv1.TrainingJobPhase, string, string) {
	if !obs.Verdict.Accepted {
		return aifv1.PhasePending, obs.Verdict.Reason, obs.Verdict.Message
	}
	if obs.Job != nil {
		for _, c := range obs.Job.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobComplete:
				return aifv1.PhaseSucceeded, aifv1.ReasonCompleted, fmt.Sprintf("all %d workers finished", tj.Spec.Nodes)
			case batchv1.JobFailed:
				return aifv1.PhaseFailed, aifv1.ReasonWorkerFailed, c.Message
			}
		}
	}
	wl := obs.Workload
	if wl == nil || !apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadAdmitted) {
		msg := "waiting for Kueue to see the job"
		if wl != nil {
			if c := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadQuotaReserved); c != nil && c.Message != "" {
				msg = c.Message
			}
			if c := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadEvicted); c != nil && c.Status == metav1.ConditionTrue {
				return aifv1.PhaseQueued, aifv1.ReasonEvicted, fmt.Sprintf("%s: %s", c.Reason, c.Message)
			}
		}
		return aifv1.PhaseQueued, aifv1.ReasonPending, msg
	}
	if obs.Job != nil && obs.Job.Status.Ready != nil && *obs.Job.Status.Ready >= tj.Spec.Nodes {
		return aifv1.PhaseRunning, aifv1.ReasonWorkersRunning, fmt.Sprintf("%d workers run", tj.Spec.Nodes)
	}
	return aifv1.PhaseAdmitted, aifv1.ReasonWorkersStarting, "admitted by Kueue; workers are starting"
}

// admission reads what Kueue granted: the flavor of the GPU resource and the GPUs.
func admission(tj *aifv1.TrainingJob, a *kueue.Admission) *aifv1.AdmissionStatus {
	out := &aifv1.AdmissionStatus{GPUs: tj.Spec.Nodes * tj.Spec.GPUsPerNode}
	for _, ps := range a.PodSetAssignments {
		if f, ok := ps.Flavors[corev1.ResourceName(tj.Spec.GPUResource)]; ok {
			out.GPUClass = string(f)
		}
	}
	return out
}
