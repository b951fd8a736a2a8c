package accounting

import (
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func tp(s string) *time.Time {
	t := ts(s)
	return &t
}

func TestBook(t *testing.T) {
	nov := PeriodAt(aifv1.PeriodMonth, ts("2026-11-15T00:00:00Z"))
	dec := PeriodAt(aifv1.PeriodMonth, ts("2026-12-15T00:00:00Z"))
	now := ts("2026-11-26T12:00:00Z")
	created := ts("2026-11-26T09:00:00Z")

	cases := []struct {
		name          string
		prev          LedgerState
		period        Period
		now           time.Time
		wls           []WorkloadUsage
		wantUsed      int64
		wantRunning   int64
		wantState     LedgerState
		wantBaselines map[types.UID]Baseline
		wantRelease   []types.UID
	}{{
		name:   "running workload counts as it runs",
		period: nov, now: now,
		wls:       []WorkloadUsage{{UID: "a", Created: created, GPUs: 16, AdmittedAt: tp("2026-11-26T11:00:00Z")}},
		wantUsed:  16 * 3600,
		wantState: LedgerState{PeriodStart: nov.Start}, wantRunning: 16,
	}, {
		name:   "finished workload stops counting at its end",
		period: nov, now: now,
		wls: []WorkloadUsage{{UID: "a", Created: created, GPUs: 8, AdmittedAt: tp("2026-11-26T10:00:00Z"),
			EndedAt: tp("2026-11-26T10:30:00Z")}},
		wantUsed:  8 * 1800,
		wantState: LedgerState{PeriodStart: nov.Start},
	}, {
		name:   "pending workload uses nothing",
		period: nov, now: now,
		wls:       []WorkloadUsage{{UID: "a", Created: created, GPUs: 8}},
		wantState: LedgerState{PeriodStart: nov.Start},
	}, {
		name:   "evicted workload keeps its earlier admitted time",
		period: nov, now: now,
		wls:       []WorkloadUsage{{UID: "a", Created: created, GPUs: 4, PastSeconds: 600}},
		wantUsed:  4 * 600,
		wantState: LedgerState{PeriodStart: nov.Start},
	}, {
		name:   "re-admitted workload adds both cycles",
		period: nov, now: now,
		wls: []WorkloadUsage{{UID: "a", Created: created, GPUs: 4, PastSeconds: 600,
			AdmittedAt: tp("2026-11-26T11:59:00Z")}},
		wantUsed:  4 * 660,
		wantState: LedgerState{PeriodStart: nov.Start}, wantRunning: 4,
	}, {
		name:   "workload across the period boundary is split there and its baseline recorded",
		period: dec, now: ts("2026-12-01T00:10:00Z"),
		wls: []WorkloadUsage{{UID: "a", Created: ts("2026-11-30T23:00:00Z"), GPUs: 8,
			AdmittedAt: tp("2026-11-30T23:30:00Z")}},
		wantUsed:      8 * 600,
		wantState:     LedgerState{PeriodStart: dec.Start},
		wantBaselines: map[types.UID]Baseline{"a": {PeriodStart: dec.Start, GPUSeconds: 8 * 1800, AdmittedAt: tp("2026-11-30T23:30:00Z")}},
		wantRunning:   8,
	}, {
		name:   "a recorded baseline is used as it is, even after an eviction moved time into the past cycles",
		period: dec, now: ts("2026-12-01T01:00:00Z"),
		wls: []WorkloadUsage{{UID: "a", Created: ts("2026-11-30T23:00:00Z"), GPUs: 8, PastSeconds: 3600,
			Baseline: &Baseline{PeriodStart: dec.Start, GPUSeconds: 8 * 1800}}},
		wantUsed:  8 * 1800,
		wantState: LedgerState{PeriodStart: dec.Start},
	}, {
		name:   "a baseline of an earlier period is replaced",
		period: dec, now: ts("2026-12-01T00:10:00Z"),
		wls: []WorkloadUsage{{UID: "a", Created: ts("2026-10-30T23:00:00Z"), GPUs: 1,
			AdmittedAt: tp("2026-10-31T00:00:00Z"), Baseline: &Baseline{PeriodStart: nov.Start, GPUSeconds: 86400}}},
		wantUsed:      600,
		wantState:     LedgerState{PeriodStart: dec.Start},
		wantBaselines: map[types.UID]Baseline{"a": {PeriodStart: dec.Start, GPUSeconds: 31 * 86400, AdmittedAt: tp("2026-10-31T00:00:00Z")}},
		wantRunning:   1,
	}, {
		name:   "an admission seen only after the period began counts from the period's start",
		period: dec, now: ts("2026-12-01T00:10:00Z"),
		wls: []WorkloadUsage{{UID: "a", Created: ts("2026-11-30T23:00:00Z"), GPUs: 8, AdmittedAt: tp("2026-11-30T23:59:58Z"),
			Baseline: &Baseline{PeriodStart: dec.Start}}},
		wantUsed:  8 * 600,
		wantState: LedgerState{PeriodStart: dec.Start}, wantRunning: 8,
	}, {
		name:   "an eviction after the baseline moves the pre-period part of the admission into past cycles, not into the period",
		period: dec, now: ts("2026-12-01T02:00:00Z"),
		wls: []WorkloadUsage{{UID: "a", Created: ts("2026-11-30T22:00:00Z"), GPUs: 2, PastSeconds: 7200, AdmittedAt: tp("2026-12-01T01:30:00Z"),
			Baseline: &Baseline{PeriodStart: dec.Start, GPUSeconds: 2 * 3600, AdmittedAt: tp("2026-11-30T23:00:00Z")}}},
		wantUsed:  2 * (3600 + 1800),
		wantState: LedgerState{PeriodStart: dec.Start}, wantRunning: 2,
	}, {
		name:   "workload created in the period needs no baseline",
		period: dec, now: ts("2026-12-01T00:10:00Z"),
		wls: []WorkloadUsage{{UID: "a", Created: ts("2026-12-01T00:00:00Z"), GPUs: 2,
			AdmittedAt: tp("2026-12-01T00:05:00Z")}},
		wantUsed:  2 * 300,
		wantState: LedgerState{PeriodStart: dec.Start}, wantRunning: 2,
	}, {
		name:   "deleted workload moves into the ledger once and is released",
		prev:   LedgerState{PeriodStart: nov.Start, DeletedGPUSeconds: 100},
		period: nov, now: now,
		wls: []WorkloadUsage{{UID: "b", Created: created, GPUs: 8, AdmittedAt: tp("2026-11-26T11:00:00Z"),
			EndedAt: tp("2026-11-26T11:10:00Z"), Deleting: true}},
		wantUsed:    100 + 8*600,
		wantState:   LedgerState{PeriodStart: nov.Start, DeletedGPUSeconds: 100 + 8*600, DeletedWorkloads: []types.UID{"b"}},
		wantRelease: []types.UID{"b"},
	}, {
		name:   "a deleted workload already in the ledger is not counted again (restart before release)",
		prev:   LedgerState{PeriodStart: nov.Start, DeletedGPUSeconds: 8 * 600, DeletedWorkloads: []types.UID{"b"}},
		period: nov, now: now,
		wls: []WorkloadUsage{{UID: "b", Created: created, GPUs: 8, AdmittedAt: tp("2026-11-26T11:00:00Z"),
			EndedAt: tp("2026-11-26T11:10:00Z"), Deleting: true}},
		wantUsed:    8 * 600,
		wantState:   LedgerState{PeriodStart: nov.Start, DeletedGPUSeconds: 8 * 600, DeletedWorkloads: []types.UID{"b"}},
		wantRelease: []types.UID{"b"},
	}, {
		name:   "a counted workload that is gone is dropped from the ledger, its seconds stay",
		prev:   LedgerState{PeriodStart: nov.Start, DeletedGPUSeconds: 4800, DeletedWorkloads: []types.UID{"b"}},
		period: nov, now: now,
		wantUsed:  4800,
		wantState: LedgerState{PeriodStart: nov.Start, DeletedGPUSeconds: 4800},
	}, {
		name:   "a new period starts from zero but remembers counted workloads that still exist",
		prev:   LedgerState{PeriodStart: nov.Start, DeletedGPUSeconds: 4800, DeletedWorkloads: []types.UID{"b"}},
		period: dec, now: ts("2026-12-01T00:10:00Z"),
		wls: []WorkloadUsage{{UID: "b", Created: created, GPUs: 8, AdmittedAt: tp("2026-11-26T11:00:00Z"),
			EndedAt: tp("2026-11-26T11:10:00Z"), Deleting: true}},
		wantState:   LedgerState{PeriodStart: dec.Start, DeletedWorkloads: []types.UID{"b"}},
		wantRelease: []types.UID{"b"},
	}, {
		name:   "a workload deleted before the period began adds nothing to it",
		prev:   LedgerState{PeriodStart: nov.Start},
		period: dec, now: ts("2026-12-01T08:00:00Z"),
		wls: []WorkloadUsage{{UID: "c", Created: created, GPUs: 8, AdmittedAt: tp("2026-11-30T22:00:00Z"),
			EndedAt: tp("2026-11-30T23:00:00Z"), Deleting: true}},
		wantState:   LedgerState{PeriodStart: dec.Start, DeletedWorkloads: []types.UID{"c"}},
		wantRelease: []types.UID{"c"},
	}, {
		name:   "several workloads add up",
		period: nov, now: now,
		wls: []WorkloadUsage{
			{UID: "a", Created: created, GPUs: 16, AdmittedAt: tp("2026-11-26T11:00:00Z")},
			{UID: "b", Created: created, GPUs: 8, AdmittedAt: tp("2026-11-26T11:30:00Z")},
			{UID: "c", Created: created, GPUs: 8},
		},
		wantUsed:  16*3600 + 8*1800,
		wantState: LedgerState{PeriodStart: nov.Start}, wantRunning: 24,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Book(tc.prev, tc.period, tc.now, tc.wls)
			if got.UsedGPUSeconds != tc.wantUsed {
				t.Errorf("used = %d, want %d", got.UsedGPUSeconds, tc.wantUsed)
			}
			if got.RunningGPUs != tc.wantRunning {
				t.Errorf("running GPUs = %d, want %d", got.RunningGPUs, tc.wantRunning)
			}
			if !reflect.DeepEqual(got.State, tc.wantState) {
				t.Errorf("state = %+v, want %+v", got.State, tc.wantState)
			}
			if tc.wantBaselines == nil {
				tc.wantBaselines = map[types.UID]Baseline{}
			}
			if !reflect.DeepEqual(got.Baselines, tc.wantBaselines) {
				t.Errorf("baselines = %+v, want %+v", got.Baselines, tc.wantBaselines)
			}
			if !reflect.DeepEqual(got.Release, tc.wantRelease) {
				t.Errorf("release = %v, want %v", got.Release, tc.wantRelease)
			}
		})
	}
}

// TestBookAcrossARestartAtThePeriodChange replays a run that spans a month end while the manager is down: the
// first pass after the restart happens in the new month, and the month's use must start at the boundary.
func TestBookAcrossARestartAtThePeriodChange(t *testing.T) {
	w := WorkloadUsage{UID: "a", Created: ts("2028-02-29T20:00:00Z"), GPUs: 8, AdmittedAt: tp("2028-02-29T22:00:00Z")}
	feb := PeriodAt(aifv1.PeriodMonth, ts("2028-02-29T23:00:00Z"))
	before := Book(LedgerState{}, feb, ts("2028-02-29T23:00:00Z"), []WorkloadUsage{w})
	if before.UsedGPUSeconds != 8*3600 {
		t.Fatalf("February use before the restart = %d, want %d", before.UsedGPUSeconds, 8*3600)
	}
	// The manager is down from 23:00 to 01:30 on 1 March; the leap day's last hour is February's.
	mar := PeriodAt(aifv1.PeriodMonth, ts("2028-03-01T01:30:00Z"))
	after := Book(before.State, mar, ts("2028-03-01T01:30:00Z"), []WorkloadUsage{w})
	if after.UsedGPUSeconds != 8*5400 {
		t.Fatalf("March use = %d, want %d", after.UsedGPUSeconds, 8*5400)
	}
	if b := after.Baselines["a"]; b.GPUSeconds != 8*7200 || !b.PeriodStart.Equal(ts("2028-03-01T00:00:00Z")) {
		t.Fatalf("baseline = %+v, want 2 h of 8 GPUs before 1 March", b)
	}
}

func TestJudge(t *testing.T) {
	cases := []struct {
		hours, used, running int64
		want                 Budget
	}{
		{2, 0, 0, Budget{RemainingSeconds: 7200}},
		{2, 7199, 0, Budget{RemainingSeconds: 1}},
		{2, 7200, 16, Budget{Exhausted: true}},
		{2, 9000, 16, Budget{Exhausted: true}},
		{2, 0, 16, Budget{RemainingSeconds: 7200, ExhaustedIn: 450 * time.Second}},
		{2, 0, 7, Budget{RemainingSeconds: 7200, ExhaustedIn: 1029 * time.Second}}, // rounded up
		{0, 0, 0, Budget{Exhausted: true}},
	}
	for _, tc := range cases {
		if got := Judge(tc.hours, tc.used, tc.running); got != tc.want {
			t.Errorf("Judge(%d, %d, %d) = %+v, want %+v", tc.hours, tc.used, tc.running, got, tc.want)
		}
	}
}

func TestHours(t *testing.T) {
	for secs, want := range map[int64]string{0: "0.00", 35: "0.00", 36: "0.01", 3600: "1.00", 5399: "1.49", 7200 * 1000: "2000.00"} {
		if got := Hours(secs); got != want {
			t.Errorf("Hours(%d) = %s, want %s", secs, got, want)
		}
	}
}

func TestBaselineRoundTrip(t *testing.T) {
	for _, b := range []Baseline{
		{PeriodStart: ts("2026-12-01T00:00:00Z"), GPUSeconds: 57600},
		{PeriodStart: ts("2026-12-01T00:00:00Z"), GPUSeconds: 57600, AdmittedAt: tp("2026-11-30T20:00:00Z")},
	} {
		got, err := ParseBaseline(b.String())
		if err != nil || !reflect.DeepEqual(got, b) {
			t.Fatalf("round trip of %s gave %+v, %v", b, got, err)
		}
	}
	for _, bad := range []string{"", "2026-12-01T00:00:00Z", "yesterday=5", "2026-12-01T00:00:00Z=-1", "2026-12-01T00:00:00Z=x", "2026-12-01T00:00:00Z=5@soon"} {
		if _, err := ParseBaseline(bad); err == nil {
			t.Errorf("ParseBaseline(%q) accepted", bad)
		}
	}
}
