package apply

import (
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// Event is one event to record on an object once its status is written.
type Event struct {
	Warning bool
	Reason  string
	// Action is the event's action: the condition type or the phase that changed.
	Action  string
	Message string
}

// ConditionEvents are the events for the conditions whose status or reason changed between before and after:
// those of the given types, or all of after's when no type is given. warning tells which are warnings.
func ConditionEvents(before, after []metav1.Condition, warning func(metav1.Condition) bool, types ...string) []Event {
	if len(types) == 0 {
		for _, c := range after {
			types = append(types, c.Type)
		}
	}
	var out []Event
	for _, t := range types {
		now := apimeta.FindStatusCondition(after, t)
		old := apimeta.FindStatusCondition(before, t)
		if now == nil || (old != nil && old.Status == now.Status && old.Reason == now.Reason) {
			continue
		}
		out = append(out, Event{Warning: warning(*now), Reason: now.Reason, Action: t, Message: now.Message})
	}
	return out
}

// Record records the events on obj, in order. Controllers call it after the status write that the events
// describe, so that no event announces a state the API server never stored.
func Record(rec events.EventRecorder, obj runtime.Object, evs []Event) {
	if rec == nil {
		return
	}
	for _, e := range evs {
		kind := corev1.EventTypeNormal
		if e.Warning {
			kind = corev1.EventTypeWarning
		}
		rec.Eventf(obj, nil, kind, e.Reason, e.Action, "%s", e.Message)
	}
}
