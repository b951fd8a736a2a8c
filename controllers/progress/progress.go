// Package progress sets the conditions that kstatus (and so Flux, kpt and cli-utils) reads to tell whether an
// object has reached its desired state: Reconciling while the operator works towards it, Stalled when it cannot
// without a change to the spec or the cluster, neither once it is there.
package progress

import (
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// State is where an object stands.
type State int

const (
	// Done: the object is as its spec asks.
	Done State = iota
	// Working: the operator or the cluster is still getting there.
	Working
	// Stuck: it will not get there without a change.
	Stuck
)

// Set writes Reconciling and Stalled for state, with the reason and message that explain it.
func Set(conds *[]metav1.Condition, generation int64, s State, reason, message string) {
	set := func(t string, on bool) {
		c := metav1.Condition{Type: t, Status: metav1.ConditionFalse, Reason: reason, Message: message, ObservedGeneration: generation}
		if on {
			c.Status = metav1.ConditionTrue
		}
		apimeta.SetStatusCondition(conds, c)
	}
	set(aifv1.ConditionReconciling, s == Working)
	set(aifv1.ConditionStalled, s == Stuck)
}
