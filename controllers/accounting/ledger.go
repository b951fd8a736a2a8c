package accounting

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"
)

// WorkloadUsage is what the budget ledger needs to know of one Kueue workload of the tenant.
type WorkloadUsage struct {
	UID     types.UID
	Created time.Time
	// GPUs is the number of GPUs (or MIG slices) the workload holds while admitted.
	GPUs int64
	// PastSeconds is the admitted time of earlier admit-evict cycles (Kueue's accumulatedPastExecutionTimeSeconds).
	PastSeconds int64
	// AdmittedAt is the start of the current admission; nil while not admitted.
	AdmittedAt *time.Time
	// EndedAt is when the current admission ended: the workload finished, or was deleted while admitted.
	EndedAt *time.Time
	// Baseline is the operator's record of the workload's GPU-seconds before a period started.
	Baseline *Baseline
	// Deleting is true once the workload has a deletion timestamp, or when it leaves the tenant with its
	// namespace: its seconds are booked into the ledger once, and its accounting finalizer released.
	Deleting bool

	// Key is namespace/name, for ordering and messages.
	Key string
	// QuotaReserved is true while Kueue holds quota for the workload and it has not finished.
	QuotaReserved bool
	// Finished is true once Kueue finished the workload.
	Finished bool
	// Check is the state of the budget AdmissionCheck on the workload; empty without one.
	Check kueue.CheckState
	// Bound is the workload's run bound in seconds (see RunBound), and BoundEnforced whether Kueue's maximum
	// execution time stops it there by itself.
	Bound         int64
	BoundEnforced bool
}

// secondsAt is the workload's admitted seconds, over all its admissions, up to t.
func (w WorkloadUsage) secondsAt(t time.Time) int64 {
	secs := w.PastSeconds
	if w.AdmittedAt != nil {
		end := t
		if w.EndedAt != nil && w.EndedAt.Before(end) {
			end = *w.EndedAt
		}
		if d := end.Sub(*w.AdmittedAt); d > 0 {
			secs += int64(d / time.Second)
		}
	}
	return secs
}

// Baseline is the GPU-seconds a workload had used before the period that starts at PeriodStart, and the start
// of the admission that was under way when the figure was taken, if any.
type Baseline struct {
	PeriodStart time.Time
	GPUSeconds  int64
	AdmittedAt  *time.Time
}

// String encodes a baseline for the workload annotation: "<period start>=<GPU-seconds>[@<admitted at>]", times
// in RFC 3339.
func (b Baseline) String() string {
	s := b.PeriodStart.UTC().Format(time.RFC3339) + "=" + strconv.FormatInt(b.GPUSeconds, 10)
	if b.AdmittedAt != nil {
		s += "@" + b.AdmittedAt.UTC().Format(time.RFC3339)
	}
	return s
}

// ParseBaseline decodes the annotation written by Baseline.String.
func ParseBaseline(s string) (Baseline, error) {
	start, rest, ok := strings.Cut(s, "=")
	if !ok {
		return Baseline{}, fmt.Errorf("baseline %q: want <time>=<seconds>[@<time>]", s)
	}
	secs, admitted, hasAdmitted := strings.Cut(rest, "@")
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return Baseline{}, fmt.Errorf("baseline %q: %w", s, err)
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || n < 0 {
		return Baseline{}, fmt.Errorf("baseline %q: bad GPU-seconds", s)
	}
	b := Baseline{PeriodStart: t, GPUSeconds: n}
	if hasAdmitted {
		a, err := time.Parse(time.RFC3339, admitted)
		if err != nil {
			return Baseline{}, fmt.Errorf("baseline %q: %w", s, err)
		}
		b.AdmittedAt = &a
	}
	return b, nil
}

// GPUSecondsAt is the workload's GPU-seconds from its first admission up to t. Earlier admit-evict cycles are
// taken to lie before t.
func (w WorkloadUsage) GPUSecondsAt(t time.Time) int64 {
	return w.secondsAt(t) * w.GPUs
}

// baseline returns what the workload used before period p, and whether that figure must be recorded on the
// workload (it is computed from the workload's timeline only once per period, so that a later eviction, which
// moves admitted time into PastSeconds, cannot shift seconds between periods).
func (w WorkloadUsage) baseline(p Period) (Baseline, bool) {
	if w.Baseline != nil && w.Baseline.PeriodStart.Equal(p.Start) {
		return *w.Baseline, false
	}
	if !w.Created.Before(p.Start) {
		return Baseline{PeriodStart: p.Start}, false
	}
	b := Baseline{PeriodStart: p.Start, GPUSeconds: w.GPUSecondsAt(p.Start)}
	if w.AdmittedAt != nil && w.AdmittedAt.Before(p.Start) {
		b.AdmittedAt = w.AdmittedAt
	}
	return b, true
}

// inPeriod is the workload's GPU-seconds in period p up to now. An admission that started before the period but
// is not the one under way when the baseline was taken was seen only after the period began (its admission
// reached the operator late); it counts from the period's start.
func (w WorkloadUsage) inPeriod(p Period, now time.Time, b Baseline) int64 {
	if w.AdmittedAt != nil && w.AdmittedAt.Before(p.Start) && (b.AdmittedAt == nil || !b.AdmittedAt.Equal(*w.AdmittedAt)) {
		start := p.Start
		w.AdmittedAt = &start
	}
	return max(w.GPUSecondsAt(now)-b.GPUSeconds, 0)
}

// running reports whether the workload consumes GPUs now.
func (w WorkloadUsage) running() bool {
	return w.AdmittedAt != nil && w.EndedAt == nil && !w.Deleting
}

// LedgerState is the durable part of the ledger, kept in the TenantQuota's status.
type LedgerState struct {
	PeriodStart       time.Time
	DeletedGPUSeconds int64
	DeletedWorkloads  []types.UID
}

// Account is the ledger after one pass.
type Account struct {
	State LedgerState
	// UsedGPUSeconds is the tenant's use in the period: deleted workloads plus the existing ones.
	UsedGPUSeconds int64
	// RunningGPUs is the number of GPUs that count against the budget right now.
	RunningGPUs int64
	// Baselines are to be recorded on the workloads, keyed by UID.
	Baselines map[types.UID]Baseline
	// Release lists deleted workloads whose seconds are in State: their accounting finalizer can go once State
	// is saved.
	Release []types.UID
}

// Book computes the tenant's use in period p at time now. Each workload is counted once by UID: a deleted
// workload moves from the live sum into State.DeletedGPUSeconds exactly once, and its UID stays in
// State.DeletedWorkloads until the object is gone. A new period starts a new count; seconds of a workload that
// runs across the boundary are split there.
func Book(prev LedgerState, p Period, now time.Time, wls []WorkloadUsage) Account {
	st := LedgerState{PeriodStart: p.Start}
	if prev.PeriodStart.Equal(p.Start) {
		st.DeletedGPUSeconds = prev.DeletedGPUSeconds
	}
	counted := map[types.UID]bool{}
	for _, uid := range prev.DeletedWorkloads {
		counted[uid] = true
	}
	acc := Account{Baselines: map[types.UID]Baseline{}}
	var live int64
	for _, w := range wls {
		if counted[w.UID] {
			st.DeletedWorkloads = append(st.DeletedWorkloads, w.UID)
			acc.Release = append(acc.Release, w.UID)
			continue
		}
		base, record := w.baseline(p)
		if record && !w.Deleting {
			acc.Baselines[w.UID] = base
		}
		in := w.inPeriod(p, now, base)
		switch {
		case w.Deleting:
			st.DeletedGPUSeconds += in
			st.DeletedWorkloads = append(st.DeletedWorkloads, w.UID)
			acc.Release = append(acc.Release, w.UID)
		default:
			live += in
			if w.running() {
				acc.RunningGPUs += w.GPUs
			}
		}
	}
	sort.Slice(st.DeletedWorkloads, func(i, j int) bool { return st.DeletedWorkloads[i] < st.DeletedWorkloads[j] })
	acc.State = st
	acc.UsedGPUSeconds = st.DeletedGPUSeconds + live
	return acc
}

// Budget is the verdict on a tenant's budget.
type Budget struct {
	Exhausted        bool
	RemainingSeconds int64
	// ExhaustedIn is how long the running GPUs take to spend what remains; zero when nothing runs or the
	// budget is already spent.
	ExhaustedIn time.Duration
}

// Judge compares use with a budget of gpuHours.
func Judge(gpuHours, used, runningGPUs int64) Budget {
	remaining := max(gpuHours*3600-used, 0)
	b := Budget{Exhausted: remaining == 0, RemainingSeconds: remaining}
	if !b.Exhausted && runningGPUs > 0 {
		b.ExhaustedIn = time.Duration((remaining+runningGPUs-1)/runningGPUs) * time.Second
	}
	return b
}

// Hours formats GPU-seconds as GPU-hours with two decimals, rounded down so that a budget is never shown as
// more spent than it is, nor remaining as more than there is.
func Hours(gpuSeconds int64) string {
	hundredths := gpuSeconds * 100 / 3600
	return fmt.Sprintf("%d.%02d", hundredths/100, hundredths%100)
}
