package accounting

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"
	utiltestingapi "sigs.k8s.io/kueue/pkg/util/testing/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

func TestRunBound(t *testing.T) {
	d := func(s string) *metav1.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &metav1.Duration{Duration: v}
	}
	cases := []struct {
		name     string
		budget   *aifv1.Budget
		asked    *int32
		want     int64
		enforced bool
	}{
		{"nothing set: 24 hours, stopped by the operator", &aifv1.Budget{}, nil, 86400, false},
		{"the tenant's default", &aifv1.Budget{DefaultMaxRunDuration: d("2m")}, nil, 120, false},
		{"the run's own, Kueue stops it", &aifv1.Budget{DefaultMaxRunDuration: d("2m")}, ptr.To[int32](150), 150, true},
		{"the run's own within the maximum", &aifv1.Budget{MaxRunDuration: d("1h")}, ptr.To[int32](3600), 3600, true},
		{"the run's own above the maximum: the maximum, stopped by the operator", &aifv1.Budget{MaxRunDuration: d("1h")}, ptr.To[int32](7200), 3600, false},
		{"a default above the maximum", &aifv1.Budget{DefaultMaxRunDuration: d("48h"), MaxRunDuration: d("1h")}, nil, 3600, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, enforced := RunBound(tc.budget, tc.asked)
			if got != tc.want || enforced != tc.enforced {
				t.Fatalf("RunBound = %d, %t; want %d, %t", got, enforced, tc.want, tc.enforced)
			}
		})
	}
}

func TestReserve(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	now := t0.Add(30 * time.Second)
	created := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	running := func(uid string, gpus, bound int64, since time.Duration) WorkloadUsage {
		return WorkloadUsage{UID: types.UID(uid), Key: "ns/" + uid, GPUs: gpus, Bound: bound, BoundEnforced: true, QuotaReserved: true,
			Check: kueue.CheckStateReady, AdmittedAt: ptr.To(now.Add(-since)), Created: t0}
	}
	pending := func(uid string, gpus, bound int64, at int) WorkloadUsage {
		return WorkloadUsage{UID: types.UID(uid), Key: "ns/" + uid, GPUs: gpus, Bound: bound, BoundEnforced: true, QuotaReserved: true,
			Check: kueue.CheckStatePending, Created: created(at)}
	}
	cases := []struct {
		name         string
		budget, used int64
		wls          []WorkloadUsage
		grant        []types.UID
		wait         []types.UID
		stop         []types.UID
		reserved     int64
		nextBound    time.Duration
		message      string
	}{{
		name:   "six 8-GPU runs of 150 s on 3,600 GPU-seconds: the three oldest are granted",
		budget: 3600,
		wls: []WorkloadUsage{pending("f", 8, 150, 6), pending("a", 8, 150, 1), pending("c", 8, 150, 3),
			pending("b", 8, 150, 2), pending("e", 8, 150, 5), pending("d", 8, 150, 4)},
		grant: []types.UID{"a", "b", "c"}, wait: []types.UID{"d", "e", "f"}, reserved: 3600,
		message: "needs 0.34 GPU-hours (8 GPUs x 2m30s run bound); 0.00 of 1.00 GPU-hours are free this month, after 1.00 used or reserved by admitted work; it is admitted when admitted work ends, the budget grows or the next period starts",
	}, {
		name:   "running work holds what is left of its bound; use counts beside it",
		budget: 3600, used: 8 * 30,
		wls:   []WorkloadUsage{running("r", 8, 150, 30*time.Second), pending("p", 8, 150, 1), pending("q", 8, 150, 2), pending("s", 8, 150, 3)},
		grant: []types.UID{"p", "q"}, wait: []types.UID{"s"},
		reserved: 8*120 + 2*8*150,
	}, {
		name:   "an early end releases the unused part (were it still running, p would wait)",
		budget: 3000, used: 8*30 + 8*30,
		wls: []WorkloadUsage{
			{UID: "done", GPUs: 8, Bound: 150, AdmittedAt: ptr.To(t0), EndedAt: ptr.To(t0.Add(30 * time.Second)), Check: kueue.CheckStateReady, Finished: true},
			running("r", 8, 150, 30*time.Second), pending("p", 8, 150, 1), pending("q", 8, 150, 2)},
		grant: []types.UID{"p"}, wait: []types.UID{"q"},
		reserved: 8*120 + 8*150,
	}, {
		name:     "granted, and its quota taken back by a held queue without a reset: it still holds its bound",
		budget:   4800,
		wls:      []WorkloadUsage{{UID: "held", GPUs: 8, Bound: 300, Check: kueue.CheckStateReady}, pending("p", 8, 300, 1)},
		grant:    []types.UID{"p"},
		reserved: 2 * 8 * 300,
	}, {
		name:     "granted but not yet admitted: what is left of its bound is held",
		budget:   4000,
		wls:      []WorkloadUsage{{UID: "g", GPUs: 8, Bound: 300, PastSeconds: 100, QuotaReserved: true, Check: kueue.CheckStateReady}, pending("p", 8, 300, 1)},
		grant:    []types.UID{"p"},
		reserved: 8*200 + 8*300,
	}, {
		name:    "a bound alone larger than the budget waits, and says it fits only with more budget",
		budget:  3600,
		wls:     []WorkloadUsage{pending("big", 512, 86400, 1)},
		wait:    []types.UID{"big"},
		message: "needs 12288.00 GPU-hours (512 GPUs x 24h0m0s run bound); 1.00 of 1.00 GPU-hours are free this month, after 0.00 used or reserved by admitted work; its reservation alone exceeds the budget: shorten its maxRunDuration, or ask for a larger budget",
	}, {
		name:   "nothing admitted and too little left: only the next period or a larger budget helps",
		budget: 3600, used: 3000,
		wls:     []WorkloadUsage{pending("late", 8, 150, 1)},
		wait:    []types.UID{"late"},
		message: "needs 0.34 GPU-hours (8 GPUs x 2m30s run bound); 0.16 of 1.00 GPU-hours are free this month, after 0.84 used or reserved by admitted work; it fits only in the next period, with a larger budget or with a shorter maxRunDuration",
	}, {
		name:   "a run that used its whole bound in earlier admissions is not granted again",
		budget: 3600,
		wls:    []WorkloadUsage{{UID: "old", GPUs: 1, Bound: 60, PastSeconds: 60, QuotaReserved: true, Check: kueue.CheckStatePending}},
		wait:   []types.UID{"old"},
	}, {
		name:   "a run Kueue does not stop is stopped at its bound; the next such bound is when to look again",
		budget: 100000,
		wls: []WorkloadUsage{
			func() WorkloadUsage { w := running("over", 1, 20, 30*time.Second); w.BoundEnforced = false; return w }(),
			func() WorkloadUsage { w := running("soon", 1, 40, 30*time.Second); w.BoundEnforced = false; return w }(),
			running("kueue", 1, 10, 30*time.Second)},
		stop: []types.UID{"over"}, reserved: 10, nextBound: 10 * time.Second,
	}, {
		name:   "deleted and finished workloads hold nothing",
		budget: 3600,
		wls: []WorkloadUsage{
			{UID: "deleting", GPUs: 8, Bound: 150, QuotaReserved: true, Check: kueue.CheckStatePending, Deleting: true},
			{UID: "finished", GPUs: 8, Bound: 150, Check: kueue.CheckStateReady, AdmittedAt: ptr.To(t0), EndedAt: ptr.To(now), Finished: true}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := Reserve(tc.budget, tc.used, "month", now, tc.wls)
			if diff := cmp.Diff(tc.grant, res.Grant); diff != "" {
				t.Errorf("grant (-want +got):\n%s", diff)
			}
			var wait []types.UID
			for _, w := range tc.wls {
				if _, ok := res.Wait[w.UID]; ok {
					wait = append(wait, w.UID)
				}
			}
			if diff := cmp.Diff(sortedUIDs(tc.wait), sortedUIDs(wait)); diff != "" {
				t.Errorf("wait (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.stop, res.Stop); diff != "" {
				t.Errorf("stop (-want +got):\n%s", diff)
			}
			if res.ReservedGPUSeconds != tc.reserved || res.NextBound != tc.nextBound {
				t.Errorf("reserved %d, next bound %s; want %d, %s", res.ReservedGPUSeconds, res.NextBound, tc.reserved, tc.nextBound)
			}
			if tc.message != "" {
				var got string
				for _, uid := range tc.wait {
					got = res.Wait[uid]
				}
				if got != tc.message {
					t.Errorf("message\n got %q\nwant %q", got, tc.message)
				}
			}
		})
	}
}

// The use in a reservation never passes the budget: a run that fits is granted, one more GPU-second is not.
func TestReserveIsExactAtTheEdge(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	w := WorkloadUsage{UID: "p", GPUs: 8, Bound: 100, QuotaReserved: true, Check: kueue.CheckStatePending}
	if res := Reserve(1000, 200, "day", now, []WorkloadUsage{w}); len(res.Grant) != 1 {
		t.Fatalf("800 GPU-seconds on 800 left: %+v", res)
	}
	res := Reserve(1000, 201, "day", now, []WorkloadUsage{w})
	if len(res.Grant) != 0 || !strings.Contains(res.Wait["p"], "free this day") {
		t.Fatalf("800 GPU-seconds on 799 left: %+v", res)
	}
}

func sortedUIDs(in []types.UID) []string {
	out := make([]string, 0, len(in))
	for _, u := range in {
		out = append(out, string(u))
	}
	sort.Strings(out)
	return out
}

// A waiting run's message does not change while admitted work runs: its use grows as its reservation shrinks.
// Each change of it is a write to the workload, and a write brings another pass.
func TestWaitMessageIsStableWhileWorkRuns(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r := WorkloadUsage{UID: "r", GPUs: 8, Bound: 150, BoundEnforced: true, QuotaReserved: true, Check: kueue.CheckStateReady, AdmittedAt: ptr.To(t0)}
	p := WorkloadUsage{UID: "p", GPUs: 32, Bound: 150, QuotaReserved: true, Check: kueue.CheckStatePending}
	var first string
	for _, s := range []int64{1, 37, 90, 149} {
		now := t0.Add(time.Duration(s) * time.Second)
		msg := Reserve(3600, r.GPUSecondsAt(now), "day", now, []WorkloadUsage{r, p}).Wait["p"]
		if first == "" {
			first = msg
		}
		if msg != first || msg == "" {
			t.Fatalf("after %d s: %q; at first %q", s, msg, first)
		}
	}
}

// While work runs the operator looks again at least every refreshEvery, so that the use in status is never
// older; with nothing running, only real deadlines bring it back.
// Kueue clears accumulatedPastExecutionTimeSeconds when it stops a workload at its maximum execution time,
// keeping only the last admission: the figure recorded before that admission was granted is added back.
func TestPastSecondsSurviveKueuesMaximumExecutionTime(t *testing.T) {
	wl := func(past int32, annotation, condition, reason string) *kueue.Workload {
		w := utiltestingapi.MakeWorkload("wl", "medai-a").PastAdmittedTime(past)
		if annotation != "" {
			w.Annotation(PastSecondsAnnotation, annotation)
		}
		if condition != "" {
			w.Condition(metav1.Condition{Type: condition, Status: metav1.ConditionTrue, Reason: reason})
		}
		return w.Obj()
	}
	cases := []struct {
		name string
		wl   *kueue.Workload
		want int64
	}{
		{"no record: Kueue's figure", wl(120, "", "", ""), 120},
		{"a record, Kueue's figure intact", wl(720, "600", kueue.WorkloadEvicted, "Preempted"), 720},
		{"stopped at its maximum execution time, evicted", wl(120, "600", kueue.WorkloadEvicted, "DeactivatedDueToMaximumExecutionTimeExceeded"), 720},
		{"stopped at its maximum execution time, still admitted", wl(0, "600", kueue.WorkloadDeactivationTarget, kueue.WorkloadMaximumExecutionTimeExceeded), 600},
		{"a record that is not a number", wl(120, "x", kueue.WorkloadEvicted, "DeactivatedDueToMaximumExecutionTimeExceeded"), 120},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := PastSeconds(tc.wl); got != tc.want {
				t.Fatalf("PastSeconds = %d, want %d", got, tc.want)
			}
		})
	}
}

// The record is written once per wait and never grows by itself: a pass that applied it and read it back must
// find nothing more to write, also after Kueue stopped the workload at its maximum execution time (where the
// recorded figure is added to Kueue's and writing the sum would count the last admission again every pass).
