package tenantquota

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/progress"
)

func TestStateOf(t *testing.T) {
	cond := func(ok bool, reason string) metav1.Condition {
		c := metav1.Condition{Status: metav1.ConditionFalse, Reason: reason}
		if ok {
			c.Status = metav1.ConditionTrue
		}
		return c
	}
	within, spent := cond(false, aifv1.ReasonWithinBudget), cond(true, aifv1.ReasonBudgetExhausted)
	for _, tc := range []struct {
		name          string
		ready, budget metav1.Condition
		want          progress.State
	}{
		{"ready", cond(true, aifv1.ReasonClusterQueueActive), within, progress.Done},
		{"held by its spent budget", cond(false, aifv1.ReasonClusterQueueInactive), spent, progress.Done},
		{"unknown GPU class", cond(false, aifv1.ReasonGPUClassUnknown), within, progress.Stuck},
		{"namespace of another tenant", cond(false, aifv1.ReasonNamespaceConflict), within, progress.Stuck},
		{"namespace not created yet", cond(false, aifv1.ReasonNamespaceMissing), within, progress.Working},
		{"queue being activated", cond(false, aifv1.ReasonClusterQueueInactive), within, progress.Working},
		{"being deleted", cond(false, aifv1.ReasonTerminating), within, progress.Working},
		{"out of budget and naming an unknown class", cond(false, aifv1.ReasonGPUClassUnknown), spent, progress.Stuck},
	} {
		if got := stateOf(tc.ready, tc.budget); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}
