package apply

import (
	"errors"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/progress"
)

// FailureConditions returns conds with Ready false for reason WriteFailed and err's message (which, for a
// *Failed, names the write), and Reconciling, or Stalled when the API server refused the write for good.
func FailureConditions(conds []metav1.Condition, generation int64, err error) []metav1.Condition {
	out := append([]metav1.Condition(nil), conds...)
	ready := metav1.Condition{Type: aifv1.ConditionReady, Status: metav1.ConditionFalse, Reason: aifv1.ReasonWriteFailed,
		Message: err.Error(), ObservedGeneration: generation}
	apimeta.SetStatusCondition(&out, ready)
	state := progress.Working
	if Refused(err) {
		state = progress.Stuck
	}
	progress.Set(&out, generation, state, ready.Reason, ready.Message)
	return out
}

// FailureShown reports whether conds already show err for this generation: Ready is WriteFailed and names the
// same write (or, for another error, the same text before its first ": ", such as "creating claim"). A controller then writes nothing: an
// API server's answer may change from one retry to the next (a quota's counts), and each status write would
// bring the object straight back, past the retry's backoff.
func FailureShown(conds []metav1.Condition, generation int64, err error) bool {
	ready := apimeta.FindStatusCondition(conds, aifv1.ConditionReady)
	if ready == nil || ready.Reason != aifv1.ReasonWriteFailed || ready.ObservedGeneration != generation {
		return false
	}
	var f *Failed
	if errors.As(err, &f) {
		return strings.HasPrefix(ready.Message, f.Write+": ")
	}
	step, _, _ := strings.Cut(err.Error(), ": ")
	return ready.Message == err.Error() || strings.HasPrefix(ready.Message, step+": ")
}

// ShowFailure hands write the conditions that show err, and returns err for the retry (joined with write's own
// error). It writes nothing for a conflict (the newer object's event brings the pass back) or for a failure
// the conditions already show.
func ShowFailure(err error, conds []metav1.Condition, generation int64, write func([]metav1.Condition) error) error {
	if apierrors.IsConflict(err) || FailureShown(conds, generation, err) {
		return err
	}
	if werr := write(FailureConditions(conds, generation, err)); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}
