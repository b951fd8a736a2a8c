package tenantquota

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"
	utiltestingapi "sigs.k8s.io/kueue/pkg/util/testing/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
)

func TestRequeueAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	month := accounting.PeriodAt(aifv1.PeriodMonth, now)
	idle := accounting.Judge(100, 0, 0)
	cases := []struct {
		name    string
		verdict *accounting.Budget
		res     *accounting.Reservation
		running int64
		reprobe time.Duration
		want    time.Duration
	}{
		{"nothing runs: the end of the period", &idle, &accounting.Reservation{}, 0, 0, month.End.Sub(now)},
		{"work runs: a minute", ptr.To(accounting.Judge(100, 0, 8)), &accounting.Reservation{}, 8, 0, time.Minute},
		{"a bound only the operator stops comes first", ptr.To(accounting.Judge(100, 0, 8)), &accounting.Reservation{NextBound: 20 * time.Second}, 8, 0, 20 * time.Second},
		{"the budget runs out first", ptr.To(accounting.Judge(1, 3590, 8)), &accounting.Reservation{}, 8, 0, 2 * time.Second},
		{"the gating probe is due", nil, nil, 0, 30 * time.Second, 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := requeueAfter(now, month, tc.verdict, tc.res, tc.running, tc.reprobe); got != tc.want {
				t.Fatalf("requeueAfter = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPastSecondsRecordReachesAFixedPoint(t *testing.T) {
	waiting := func(past int32, annotation, reason string) *kueue.Workload {
		w := utiltestingapi.MakeWorkload("wl", "medai-a").PastAdmittedTime(past).
			AdmissionCheck(kueue.AdmissionCheckState{Name: aifv1.BudgetCheckName, State: kueue.CheckStatePending})
		if annotation != "" {
			w.Annotation(accounting.PastSecondsAnnotation, annotation)
		}
		if reason != "" {
			w.Condition(metav1.Condition{Type: kueue.WorkloadEvicted, Status: metav1.ConditionTrue, Reason: reason})
		}
		return w.Obj()
	}
	cases := []struct {
		name      string
		wl        *kueue.Workload
		want      string // the annotation after the passes
		wantTotal int64
	}{
		{"first admission", waiting(0, "", ""), "", 0},
		{"preempted once", waiting(300, "", "Preempted"), "300", 300},
		{"an older record", waiting(720, "600", "Preempted"), "720", 720},
		{"stopped at its maximum", waiting(120, "600", "DeactivatedDueToMaximumExecutionTimeExceeded"), "600", 720},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for pass := range 3 {
				v, write := pastToRecord(tc.wl)
				if write && pass > 0 {
					t.Fatalf("pass %d rewrites the record to %s", pass+1, v)
				}
				if write {
					metav1.SetMetaDataAnnotation(&tc.wl.ObjectMeta, accounting.PastSecondsAnnotation, v)
				}
			}
			if got := tc.wl.Annotations[accounting.PastSecondsAnnotation]; got != tc.want {
				t.Fatalf("record %q, want %q", got, tc.want)
			}
			if got := accounting.PastSeconds(tc.wl); got != tc.wantTotal {
				t.Fatalf("accounting.PastSeconds = %d, want %d", got, tc.wantTotal)
			}
		})
	}
}
