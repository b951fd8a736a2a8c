package trainingjob

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

// The writes of a TrainingJob's pass, as data: the status first, so that an attempt is recorded before its Job
// exists, then the children in the order Plan gives.
func TestPlan(t *testing.T) {
	base := builders.TrainingJob("ns", "run").Shape(2, 8).MaxRestarts(2).Obj()
	base.Generation = 1
	accepted := Verdict{Accepted: true, Reason: aifv1.ReasonAccepted}
	type step struct {
		Verb   apply.Verb
		Kind   string
		Name   string
		Status bool
	}
	steps := func(plan apply.Plan) []step {
		var out []step
		for _, w := range plan {
			out = append(out, step{w.Verb, fmt.Sprintf("%T", w.Object), w.Object.GetName(), w.Status})
		}
		return out
	}
	status := step{apply.Update, "*v1alpha1.TrainingJob", "run", true}
	cases := []struct {
		name  string
		tj    *aifv1.TrainingJob
		obs   Observed
		want  []step
		check func(*testing.T, apply.Plan)
	}{{
		name: "a new run: its status, then its Service, then attempt 0's Job",
		tj:   base,
		obs:  Observed{Verdict: accepted},
		want: []step{status, {apply.Create, "*v1.Service", "run", false}, {apply.Create, "*v1.Job", "run-0", false}},
		check: func(t *testing.T, plan apply.Plan) {
			if !plan[1].IfMissing || !plan[2].IfMissing {
				t.Error("a child of a deterministic name that exists already is the one an earlier pass made")
			}
		},
	}, {
		name: "a restart: the failed attempt's Job is left as it is, the next attempt's Job is built from the new status",
		tj: func() *aifv1.TrainingJob {
			tj := base.DeepCopy()
			tj.Status = aifv1.TrainingJobStatus{Phase: aifv1.PhaseRunning, Usage: &aifv1.Usage{Attempts: []aifv1.AttemptUsage{{Attempt: 0}}}}
			return tj
		}(),
		obs: Observed{Verdict: accepted, ServiceExists: true, Job: &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "run-0"},
			Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}}}},
		want: []step{status, {apply.Create, "*v1.Job", "run-1", false}},
		check: func(t *testing.T, plan apply.Plan) {
			count := "none"
			for _, e := range plan[1].Object.(*batchv1.Job).Spec.Template.Spec.Containers[0].Env {
				if e.Name == "AIFACTORY_RESTART_COUNT" {
					count = e.Value
				}
			}
			if count != "1" {
				t.Errorf("AIFACTORY_RESTART_COUNT = %s, want 1, the count the new status records", count)
			}
		},
	}, {
		name: "an earlier attempt's Job left over goes before anything is made, with its UID as a precondition",
		tj:   base,
		obs:  Observed{Verdict: accepted, ServiceExists: true, Superseded: []*batchv1.Job{{ObjectMeta: metav1.ObjectMeta{Name: "run-old", UID: "u-old"}}}},
		want: []step{status, {apply.Delete, "*v1.Job", "run-old", false}, {apply.Create, "*v1.Job", "run-0", false}},
	}, {
		name: "suspended while queued: the status, then the workload deactivated with the reason",
		tj: func() *aifv1.TrainingJob {
			tj := base.DeepCopy()
			tj.Spec.Suspend = true
			tj.Status = aifv1.TrainingJobStatus{Phase: aifv1.PhaseQueued, Usage: &aifv1.Usage{Attempts: []aifv1.AttemptUsage{{Attempt: 0}}}}
			return tj
		}(),
		obs:  Observed{Verdict: accepted, ServiceExists: true, Job: attemptJob(0, ""), Workload: workload().pending().Workload},
		want: []step{status, {apply.Patch, "*v1beta2.Workload", "job-run-0-abcde", false}},
		check: func(t *testing.T, plan apply.Plan) {
			wl := plan[1].Object.(*kueue.Workload)
			if ptr.Deref(wl.Spec.Active, true) || wl.Annotations[aifv1.DeactivatedAnnotation] != aifv1.ReasonSuspended {
				t.Errorf("active %v, annotations %v", wl.Spec.Active, wl.Annotations)
			}
		},
	}, {
		name: "ended at its deadline with the workload still active (a crash after the status write): it is deactivated",
		tj: func() *aifv1.TrainingJob {
			tj := base.DeepCopy()
			tj.Status = aifv1.TrainingJobStatus{Phase: aifv1.PhaseFailed, Reason: aifv1.ReasonDeadlineExceeded, ObservedGeneration: 1,
				Usage: &aifv1.Usage{Attempts: []aifv1.AttemptUsage{{Attempt: 0}}}}
			return tj
		}(),
		obs:  Observed{Job: attemptJob(2, ""), Workload: workload().admitted(time.Minute).Workload},
		want: []step{status, {apply.Patch, "*v1beta2.Workload", "job-run-0-abcde", false}},
		check: func(t *testing.T, plan apply.Plan) {
			if !cmp.Equal(plan[0].Object, plan[0].Current) {
				t.Errorf("the record of an ended run changed: %s", cmp.Diff(plan[0].Current, plan[0].Object))
			}
		},
	}, {
		name: "an ended run edited: only its observed generation moves",
		tj: func() *aifv1.TrainingJob {
			tj := base.DeepCopy()
			tj.Generation = 3
			tj.Status = aifv1.TrainingJobStatus{Phase: aifv1.PhaseSucceeded, Reason: aifv1.ReasonCompleted, ObservedGeneration: 1,
				Conditions: []metav1.Condition{{Type: aifv1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: 1}}}
			return tj
		}(),
		want: []step{status},
		check: func(t *testing.T, plan apply.Plan) {
			st := plan[0].Object.(*aifv1.TrainingJob).Status
			if st.ObservedGeneration != 3 || st.Conditions[0].ObservedGeneration != 3 || st.Phase != aifv1.PhaseSucceeded {
				t.Errorf("status %+v", st)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.obs.Now = t0.Add(time.Hour)
			st, act := Step(tc.tj, tc.obs)
			next := tc.tj.DeepCopy()
			next.Status = st
			plan := Plan(tc.tj, next, tc.obs, Input{}, act)
			if diff := cmp.Diff(tc.want, steps(plan)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if tc.check != nil {
				tc.check(t, plan)
			}
		})
	}
}

// A run reads only whether its LocalQueue exists: Kueue's counter updates on the queue bring no run back.
func TestQueueCameOrWent(t *testing.T) {
	p := queueCameOrWent()
	lq := &kueue.LocalQueue{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "default"}}
	counted := lq.DeepCopy()
	counted.Status.PendingWorkloads = 3
	if !p.Create(event.CreateEvent{Object: lq}) || !p.Delete(event.DeleteEvent{Object: lq}) {
		t.Error("a queue that comes or goes changes whether runs are accepted")
	}
	if p.Update(event.UpdateEvent{ObjectOld: lq, ObjectNew: counted}) || p.Generic(event.GenericEvent{Object: lq}) {
		t.Error("a counter update brings the namespace's runs back")
	}
}
