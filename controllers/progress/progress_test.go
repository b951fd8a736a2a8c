package progress

import (
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

func TestSet(t *testing.T) {
	for _, tc := range []struct {
		state                State
		reconciling, stalled bool
	}{{Done, false, false}, {Working, true, false}, {Stuck, false, true}} {
		var conds []metav1.Condition
		Set(&conds, 3, Working, "Before", "")
		Set(&conds, 4, tc.state, "Why", "because")
		r, s := apimeta.FindStatusCondition(conds, aifv1.ConditionReconciling), apimeta.FindStatusCondition(conds, aifv1.ConditionStalled)
		if (r.Status == metav1.ConditionTrue) != tc.reconciling || (s.Status == metav1.ConditionTrue) != tc.stalled {
			t.Errorf("state %d: Reconciling %s, Stalled %s", tc.state, r.Status, s.Status)
		}
		if r.ObservedGeneration != 4 || s.Reason != "Why" || len(conds) != 2 {
			t.Errorf("state %d: %+v", tc.state, conds)
		}
	}
}
