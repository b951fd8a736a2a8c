package jobs

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestEnded(t *testing.T) {
	job := func(conds ...batchv1.JobCondition) *batchv1.Job {
		return &batchv1.Job{Status: batchv1.JobStatus{Conditions: conds}}
	}
	cond := func(t batchv1.JobConditionType, s corev1.ConditionStatus) batchv1.JobCondition {
		return batchv1.JobCondition{Type: t, Status: s}
	}
	cases := []struct {
		name string
		job  *batchv1.Job
		want batchv1.JobConditionType
	}{
		{"running", job(), ""},
		{"suspended", job(cond(batchv1.JobSuspended, corev1.ConditionTrue)), ""},
		{"about to fail: not ended yet", job(cond(batchv1.JobFailureTarget, corev1.ConditionTrue)), ""},
		{"a false Complete", job(cond(batchv1.JobComplete, corev1.ConditionFalse)), ""},
		{"complete", job(cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue), cond(batchv1.JobComplete, corev1.ConditionTrue)), batchv1.JobComplete},
		{"failed", job(cond(batchv1.JobFailureTarget, corev1.ConditionTrue), cond(batchv1.JobFailed, corev1.ConditionTrue)), batchv1.JobFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got batchv1.JobConditionType
			if c := Ended(tc.job); c != nil {
				got = c.Type
			}
			if got != tc.want {
				t.Fatalf("Ended = %q, want %q", got, tc.want)
			}
		})
	}
}
