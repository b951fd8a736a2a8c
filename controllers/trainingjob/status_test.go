package trainingjob

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

func TestComputeStatus(t *testing.T) {
	tj := builders.TrainingJob("ns", "run").Shape(2, 8).Obj()
	tj.Generation = 2
	accepted := Verdict{Accepted: true, Reason: aifv1.ReasonAccepted, Message: "queued"}
	pendingWL := &kueue.Workload{ObjectMeta: metav1.ObjectMeta{Name: "job-run-0-abc"}, Status: kueue.WorkloadStatus{Conditions: []metav1.Condition{
		{Type: kueue.WorkloadQuotaReserved, Status: metav1.ConditionFalse, Reason: "Pending", Message: "insufficient unused quota for nvidia.com/gpu in flavor h100-80gb, 8 more needed"}}}}
	admittedWL := &kueue.Workload{ObjectMeta: metav1.ObjectMeta{Name: "job-run-0-abc"}, Status: kueue.WorkloadStatus{
		Conditions: []metav1.Condition{
			{Type: kueue.WorkloadQuotaReserved, Status: metav1.ConditionTrue, Reason: "QuotaReserved"},
			{Type: kueue.WorkloadAdmitted, Status: metav1.ConditionTrue, Reason: "Admitted"},
		},
		Admission: &kueue.Admission{ClusterQueue: "tenant-medai", PodSetAssignments: []kueue.PodSetAssignment{
			{Name: "main", Flavors: map[corev1.ResourceName]kueue.ResourceFlavorReference{"nvidia.com/gpu": "h100-80gb", "cpu": "h100-80gb"}}}},
	}}
	evictedWL := pendingWL.DeepCopy()
	evictedWL.Status.Conditions = append(evictedWL.Status.Conditions, metav1.Condition{Type: kueue.WorkloadEvicted, Status: metav1.ConditionTrue, Reason: "Preempted", Message: "reclaimed by tenant-b"})
	job := func(ready int32, conds ...batchv1.JobConditionType) *batchv1.Job {
		j := &batchv1.Job{Status: batchv1.JobStatus{Ready: ptr.To(ready)}}
		for _, c := range conds {
			j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: c, Status: corev1.ConditionTrue, Message: "worker 1 exited with 137"})
		}
		return j
	}
	cases := []struct {
		name   string
		obs    Observed
		phase  aifv1.TrainingJobPhase
		reason string
	}{
		{"not accepted", Observed{Verdict: Verdict{Reason: aifv1.ReasonDatasetNotReady, Message: "DatasetMount x does not exist"}}, aifv1.PhasePending, aifv1.ReasonDatasetNotReady},
		{"job created, no workload yet", Observed{Verdict: accepted, Job: job(0)}, aifv1.PhaseQueued, aifv1.ReasonPending},
		{"waiting for quota", Observed{Verdict: accepted, Job: job(0), Workload: pendingWL}, aifv1.PhaseQueued, aifv1.ReasonPending},
		{"evicted", Observed{Verdict: accepted, Job: job(0), Workload: evictedWL}, aifv1.PhaseQueued, aifv1.ReasonEvicted},
		{"admitted, workers starting", Observed{Verdict: accepted, Job: job(1), Workload: admittedWL}, aifv1.PhaseAdmitted, aifv1.ReasonWorkersStarting},
		{"all workers ready", Observed{Verdict: accepted, Job: job(2), Workload: admittedWL}, aifv1.PhaseRunning, aifv1.ReasonWorkersRunning},
		{"complete", Observed{Verdict: accepted, Job: job(0, batchv1.JobComplete), Workload: admittedWL}, aifv1.PhaseSucceeded, aifv1.ReasonCompleted},
		{"failed", Observed{Verdict: accepted, Job: job(0, batchv1.JobFailed), Workload: admittedWL}, aifv1.PhaseFailed, aifv1.ReasonWorkerFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := ComputeStatus(tj, tc.obs)
			if st.Phase != tc.phase || st.Reason != tc.reason || st.Message == "" || st.GPUs != 16 || st.ObservedGeneration != 2 {
				t.Fatalf("got phase %s reason %s message %q", st.Phase, st.Reason, st.Message)
			}
			for _, c := range st.Conditions {
				if c.ObservedGeneration != 2 || c.Reason == "" {
					t.Fatalf("condition %s without reason or observedGeneration", c.Type)
				}
			}
			done := tc.phase == aifv1.PhaseSucceeded || tc.phase == aifv1.PhaseFailed
			if apimeta.IsStatusConditionTrue(st.Conditions, aifv1.ConditionReconciling) == done || (st.CompletionTime != nil) != done {
				t.Fatalf("Reconciling and completionTime must follow the end of the run: %+v", st)
			}
		})
	}
	st := ComputeStatus(tj, Observed{Verdict: accepted, Job: job(0), Workload: pendingWL})
	if st.Queue.Message != pendingWL.Status.Conditions[0].Message || st.Message != st.Queue.Message {
		t.Fatalf("Kueue's message must reach the status: %+v", st.Queue)
	}
	st = ComputeStatus(tj, Observed{Verdict: accepted, Job: job(0), Workload: admittedWL})
	if st.Admission.GPUClass != "h100-80gb" || st.Admission.GPUs != 16 || st.Queue.ClusterQueue != "tenant-medai" ||
		!apimeta.IsStatusConditionTrue(st.Conditions, aifv1.ConditionAdmitted) {
		t.Fatalf("admission: %+v %+v", st.Admission, st.Queue)
	}
}
