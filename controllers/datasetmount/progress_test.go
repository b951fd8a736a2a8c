package datasetmount

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/progress"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

func TestStateOf(t *testing.T) {
	ready := func(ok bool, reason string) metav1.Condition {
		c := metav1.Condition{Type: aifv1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason}
		if ok {
			c.Status = metav1.ConditionTrue
		}
		return c
	}
	verified := func(ok bool, reason string) metav1.Condition {
		c := ready(ok, reason)
		c.Type = aifv1.ConditionVerified
		return c
	}
	plain := builders.DatasetMount("ns", "d", "/t/d").Obj()
	checked := builders.DatasetMount("ns", "d", "/t/d").Verification(aifv1.VerificationMetadata).Obj()
	for _, tc := range []struct {
		name  string
		dsm   *aifv1.DatasetMount
		conds []metav1.Condition
		want  progress.State
	}{
		{"bound, no verification", plain, []metav1.Condition{ready(true, aifv1.ReasonClaimBound)}, progress.Done},
		{"bound and verified", checked, []metav1.Condition{ready(true, aifv1.ReasonClaimBound), verified(true, aifv1.ReasonVerificationSucceeded)}, progress.Done},
		{"bound, verification running", checked, []metav1.Condition{ready(true, aifv1.ReasonClaimBound), verified(false, aifv1.ReasonVerificationRunning)}, progress.Working},
		{"claim pending", plain, []metav1.Condition{ready(false, aifv1.ReasonClaimPending)}, progress.Working},
		{"verification failed", checked, []metav1.Condition{ready(true, aifv1.ReasonClaimBound), verified(false, aifv1.ReasonVerificationFailed)}, progress.Stuck},
		{"path outside the tenant's roots", plain, []metav1.Condition{ready(false, aifv1.ReasonNotPermitted)}, progress.Stuck},
		{"unknown filesystem", plain, []metav1.Condition{ready(false, aifv1.ReasonFilesystemUnknown)}, progress.Stuck},
		{"no tenant", plain, []metav1.Condition{ready(false, aifv1.ReasonNoTenant)}, progress.Stuck},
	} {
		if got, _ := stateOf(tc.dsm, tc.conds); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}
