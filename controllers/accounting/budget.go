package accounting

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// DefaultRunBound is the run bound of a budgeted tenant's runs that set none when the TenantQuota has no
// budget.defaultMaxRunDuration.
const DefaultRunBound = 24 * time.Hour

// RunBound is the bound, in seconds, of a run of a tenant with budget b that asks for maxExec seconds (nil: none
// asked): what it asks for, else the tenant's default, never more than the tenant's maximum. enforced is true when
// the run's own bound is within the maximum, so that Kueue's maximum execution time already stops it there.
func RunBound(b *aifv1.Budget, maxExec *int32) (seconds int64, enforced bool) {
	seconds = int64(DefaultRunBound / time.Second)
	if b != nil && b.DefaultMaxRunDuration != nil {
		seconds = int64(b.DefaultMaxRunDuration.Duration / time.Second)
	}
	if maxExec != nil && *maxExec > 0 {
		seconds, enforced = int64(*maxExec), true
	}
	if b != nil && b.MaxRunDuration != nil {
		if limit := int64(b.MaxRunDuration.Duration / time.Second); seconds > limit {
			seconds, enforced = limit, false
		}
	}
	return max(seconds, 1), enforced
}

// Reservation is the budget check's verdict on a tenant's workloads at one moment.
type Reservation struct {
	// ReservedGPUSeconds is what admitted work (and work granted in this pass) may still use before its bound.
	ReservedGPUSeconds int64
	// Grant lists the workloads whose check turns Ready, in the order they were granted.
	Grant []types.UID
	// Wait maps the workloads whose check stays Pending to why.
	Wait map[types.UID]string
	// Stop lists admitted workloads that reached their run bound and that Kueue does not stop by itself.
	Stop []types.UID
	// NextBound is when the next admitted workload that Kueue does not stop reaches its bound; zero if none.
	NextBound time.Duration
}

// Reserve decides the budget check of every workload whose quota Kueue reserved and whose check is Pending:
// Ready if the period's use, plus the reservations of admitted work, plus the workload's own reservation (its
// GPUs times the part of its run bound that earlier admissions left) fit budgetSeconds. Candidates are taken
// oldest first; each one granted adds its reservation before the next is judged.
func Reserve(budgetSeconds, used int64, period string, now time.Time, wls []WorkloadUsage) Reservation {
	res := Reservation{Wait: map[types.UID]string{}}
	var candidates []WorkloadUsage
	for _, w := range wls {
		switch {
		case w.running():
			left := w.Bound - w.secondsAt(now)
			res.ReservedGPUSeconds += w.GPUs * max(left, 0)
			if w.BoundEnforced {
				continue
			}
			if left <= 0 {
				res.Stop = append(res.Stop, w.UID)
			} else if d := time.Duration(left) * time.Second; res.NextBound == 0 || d < res.NextBound {
				res.NextBound = d
			}
		case !w.Finished && !w.Deleting && w.Check == kueue.CheckStateReady:
			// Granted, not yet admitted: it holds its whole remaining bound. Kueue may take its quota back without
			// resetting the check (a held or stopped queue) and admit it later at once, so it holds it also then.
			res.ReservedGPUSeconds += w.GPUs * max(w.Bound-w.PastSeconds, 0)
		case w.QuotaReserved && !w.Deleting && w.Check == kueue.CheckStatePending:
			candidates = append(candidates, w)
		}
	}
	sort.SliceStable(candidates, func(i, j int) bool {
		if !candidates[i].Created.Equal(candidates[j].Created) {
			return candidates[i].Created.Before(candidates[j].Created)
		}
		return candidates[i].Key < candidates[j].Key
	})
	for _, w := range candidates {
		left := w.Bound - w.PastSeconds
		if left <= 0 {
			res.Wait[w.UID] = fmt.Sprintf("the workload has used its whole run bound of %s in earlier admissions", time.Duration(w.Bound)*time.Second)
			continue
		}
		needs := w.GPUs * left
		if used+res.ReservedGPUSeconds+needs <= budgetSeconds {
			res.ReservedGPUSeconds += needs
			res.Grant = append(res.Grant, w.UID)
			continue
		}
		res.Wait[w.UID] = waitMessage(needs, w.GPUs, left, budgetSeconds, used, res.ReservedGPUSeconds, period)
	}
	return res
}

// waitMessage says why a workload waits, in figures that stay the same while admitted work runs (its use grows
// as its reservation shrinks), so that the message is written once per change, not once per pass.
func waitMessage(needs, gpus, bound, budgetSeconds, used, reserved int64, period string) string {
	committed := used + reserved
	msg := fmt.Sprintf("needs %s GPU-hours (%d GPUs x %s run bound); %s of %s GPU-hours are free this %s, after %s used or reserved by admitted work",
		HoursUp(needs), gpus, time.Duration(bound)*time.Second, Hours(max(budgetSeconds-committed, 0)), Hours(budgetSeconds), period, HoursUp(committed))
	switch {
	case needs > budgetSeconds:
		return msg + "; its reservation alone exceeds the budget: shorten its maxRunDuration, or ask for a larger budget"
	case reserved == 0:
		return msg + "; it fits only in the next period, with a larger budget or with a shorter maxRunDuration"
	}
	return msg + "; it is admitted when admitted work ends, the budget grows or the next period starts"
}

// PeriodWord names a budget period in messages: "day", "month".
func PeriodWord(p aifv1.BudgetPeriod) string {
	if p == "" {
		p = aifv1.PeriodMonth
	}
	return strings.ToLower(string(p))
}

// HoursUp formats GPU-seconds as GPU-hours with two decimals, rounded up: for what a run needs or holds, so that
// it is never shown as less than it is.
func HoursUp(gpuSeconds int64) string {
	hundredths := (gpuSeconds*100 + 3599) / 3600
	return fmt.Sprintf("%d.%02d", hundredths/100, hundredths%100)
}
