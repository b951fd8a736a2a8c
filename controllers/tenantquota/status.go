package tenantquota

import (
	"fmt"
	"sort"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/progress"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenancy"
)

// Observed is what one pass read of a tenant's world.
type Observed struct {
	// Existing is the set of the tenant's namespaces that exist and are not being deleted.
	Existing map[string]bool
	// Present is the set of the tenant's namespaces that exist, being deleted or not: their workloads count.
	Present map[string]bool
	// NamespaceLabels are the labels of the tenant's existing namespaces.
	NamespaceLabels map[string]map[string]string
	// Probed is true once every existing namespace of the tenant carried its labels and was probed for Kueue's
	// gate.
	Probed bool
	// Ungated maps a probed namespace where Kueue would not gate a GPU Pod to why.
	Ungated map[string]string
	// Reprobe is when the gating probe is due again; zero when no namespace was probed.
	Reprobe time.Duration
	// Conflicts maps a namespace of the tenant to the older TenantQuota that already has it.
	Conflicts map[string]string
	// Classes are the known GPU classes by name.
	Classes map[string]classes.Class
	// ClusterQueue is the tenant's ClusterQueue, nil until created.
	ClusterQueue *kueue.ClusterQueue
	// LocalQueues are the tenant's LocalQueues by namespace.
	LocalQueues map[string]*kueue.LocalQueue
	// Workloads are the tenant's Kueue workloads.
	Workloads []kueue.Workload
	// BudgetCheck is the budget AdmissionCheck, nil until created; read only for tenants with a budget.
	BudgetCheck *kueue.AdmissionCheck
}

// Departing returns the namespaces that left the spec and have no work of the tenant left: their workloads are
// booked into the ledger and their LocalQueues removed.
func (o *Observed) Departing(tq *aifv1.TenantQuota) map[string]bool {
	out := map[string]bool{}
	if tq.DeletionTimestamp != nil {
		return out
	}
	for ns, work := range o.Draining(tq) {
		if work == 0 {
			out[ns] = true
		}
	}
	return out
}

// Namespaces returns the namespaces whose workloads the tenant's ClusterQueue admits: those in the spec that
// no older TenantQuota has.
func (o *Observed) Namespaces(tq *aifv1.TenantQuota) []string {
	var out []string
	for _, ns := range tq.Spec.Namespaces {
		if o.Conflicts[ns] == "" {
			out = append(out, ns)
		}
	}
	return out
}

// Draining returns the tenant's LocalQueues in namespaces that left the spec, with the work still in each: its
// unfinished workloads as the cache shows them, or Kueue's counters on the LocalQueue where those are higher
// (Kueue updates them a moment after the workloads).
func (o *Observed) Draining(tq *aifv1.TenantQuota) map[string]int32 {
	keep := map[string]bool{}
	for _, ns := range o.Namespaces(tq) {
		keep[ns] = true
	}
	out := map[string]int32{}
	for ns, lq := range o.LocalQueues {
		if keep[ns] {
			continue
		}
		var unfinished int32
		for i := range o.Workloads {
			wl := &o.Workloads[i]
			if wl.Namespace == ns && string(wl.Spec.QueueName) == lq.Name && !apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadFinished) {
				unfinished++
			}
		}
		out[ns] = max(unfinished, lq.Status.PendingWorkloads+lq.Status.ReservingWorkloads)
	}
	return out
}

// Conflicts finds, for each namespace of tq, an older TenantQuota (by creation time, then name) that lists it.
func Conflicts(tq *aifv1.TenantQuota, all []aifv1.TenantQuota) map[string]string {
	out := map[string]string{}
	for _, other := range all {
		if other.Name == tq.Name || !tenancy.Older(&other, tq) {
			continue
		}
		for _, ns := range other.Spec.Namespaces {
			for _, mine := range tq.Spec.Namespaces {
				if ns == mine && out[ns] == "" {
					out[ns] = other.Name
				}
			}
		}
	}
	return out
}

// StopPolicy is the ClusterQueue stop policy: Hold while the tenant is deleted, the budget's policy while it
// is spent, None otherwise.
func StopPolicy(tq *aifv1.TenantQuota, exhausted bool) kueue.StopPolicy {
	switch {
	case tq.DeletionTimestamp != nil:
		return kueue.Hold
	case exhausted && tq.Spec.Budget.OnExhausted == aifv1.ExhaustedHoldAndDrain:
		return kueue.HoldAndDrain
	case exhausted:
		return kueue.Hold
	default:
		return kueue.None
	}
}

// ComputeStatus derives the TenantQuota's status from what was observed and the ledger. It starts from the old
// status so that condition transition times survive passes that change nothing.
func ComputeStatus(tq *aifv1.TenantQuota, obs *Observed, acc accounting.Account, p accounting.Period, verdict *accounting.Budget, res *accounting.Reservation) aifv1.TenantQuotaStatus {
	st := aifv1.TenantQuotaStatus{
		ObservedGeneration: tq.Generation,
		Conditions:         append([]metav1.Condition(nil), tq.Status.Conditions...),
		ClusterQueue:       ClusterQueueName(tq.Name),
		Ledger:             ledgerStatus(acc.State),
	}
	st.GPUs, st.NominalGPUs, st.AdmittedGPUs = gpuStatus(tq, obs)
	if cq := obs.ClusterQueue; cq != nil {
		st.Workloads = aifv1.WorkloadCounts{Admitted: cq.Status.AdmittedWorkloads, Pending: cq.Status.PendingWorkloads}
	}
	st.Workloads.Waiting = waiting(obs.Workloads, maxWaiting)
	for _, ns := range tq.Spec.Namespaces {
		n := aifv1.NamespaceStatus{Name: ns, Exists: obs.Existing[ns]}
		if lq := obs.LocalQueues[ns]; lq != nil {
			n.LocalQueue = lq.Name
		}
		st.Namespaces = append(st.Namespaces, n)
	}
	st.Budget = &aifv1.BudgetStatus{
		PeriodStart:    metav1.NewTime(p.Start),
		PeriodEnd:      metav1.NewTime(p.End),
		UsedGPUSeconds: acc.UsedGPUSeconds,
		UsedGPUHours:   accounting.Hours(acc.UsedGPUSeconds),
	}
	if verdict != nil {
		st.Budget.BudgetGPUHours = fmt.Sprintf("%d", tq.Spec.Budget.GPUHours)
		st.Budget.RemainingGPUHours = accounting.Hours(verdict.RemainingSeconds)
	}
	if res != nil {
		st.Budget.ReservedGPUSeconds = res.ReservedGPUSeconds
		st.Budget.ReservedGPUHours = accounting.HoursUp(res.ReservedGPUSeconds)
	}
	ready := readyCondition(tq, obs, verdict != nil && verdict.Exhausted)
	ready.ObservedGeneration = tq.Generation
	budget := budgetCondition(tq, st.Budget, verdict)
	budget.ObservedGeneration = tq.Generation
	apimeta.SetStatusCondition(&st.Conditions, ready)
	apimeta.SetStatusCondition(&st.Conditions, budget)
	if obs.Probed {
		apimeta.SetStatusCondition(&st.Conditions, isolatedCondition(tq, obs.Ungated))
	}
	progress.Set(&st.Conditions, tq.Generation, stateOf(ready, budget), ready.Reason, ready.Message)
	return st
}

// stateOf reads kstatus's view of a tenant from its Ready condition. A tenant held by its spent budget is as its
// spec asks: the hold is the budget working.
func stateOf(ready, budget metav1.Condition) progress.State {
	switch {
	case ready.Reason == aifv1.ReasonGPUClassUnknown, ready.Reason == aifv1.ReasonNamespaceConflict:
		return progress.Stuck
	case ready.Status == metav1.ConditionTrue, budget.Status == metav1.ConditionTrue:
		return progress.Done
	}
	return progress.Working
}

// maxWaiting bounds the waiting workloads shown in status.
const maxWaiting = 5

// waiting lists the oldest workloads that wait for quota, with Kueue's message.
func waiting(wls []kueue.Workload, n int) []aifv1.WaitingWorkload {
	var pending []*kueue.Workload
	for i := range wls {
		wl := &wls[i]
		if wl.DeletionTimestamp == nil && !apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadQuotaReserved) &&
			!apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadFinished) {
			pending = append(pending, wl)
		}
	}
	sort.Slice(pending, func(i, j int) bool {
		if !pending[i].CreationTimestamp.Equal(&pending[j].CreationTimestamp) {
			return pending[i].CreationTimestamp.Before(&pending[j].CreationTimestamp)
		}
		return pending[i].Namespace+"/"+pending[i].Name < pending[j].Namespace+"/"+pending[j].Name
	})
	var out []aifv1.WaitingWorkload
	for _, wl := range pending[:min(n, len(pending))] {
		w := aifv1.WaitingWorkload{Namespace: wl.Namespace, Name: wl.Name}
		if c := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadQuotaReserved); c != nil {
			w.Message = c.Message
		}
		out = append(out, w)
	}
	return out
}

func gpuStatus(tq *aifv1.TenantQuota, obs *Observed) (out []aifv1.GPUClassStatus, nominal, admitted int32) {
	usage := map[string]kueue.FlavorUsage{}
	if obs.ClusterQueue != nil {
		for _, f := range obs.ClusterQueue.Status.FlavorsUsage {
			usage[string(f.Name)] = f
		}
	}
	for _, g := range tq.Spec.GPUs {
		s := aifv1.GPUClassStatus{GPUClass: g.GPUClass, Nominal: g.Nominal}
		if c, ok := obs.Classes[g.GPUClass]; ok {
			for _, r := range usage[g.GPUClass].Resources {
				if r.Name == c.Resource {
					s.Admitted, s.Borrowed = int32(r.Total.Value()), int32(r.Borrowed.Value())
				}
			}
		}
		nominal += s.Nominal
		admitted += s.Admitted
		out = append(out, s)
	}
	return out, nominal, admitted
}

func ledgerStatus(st accounting.LedgerState) *aifv1.Ledger {
	l := &aifv1.Ledger{PeriodStart: metav1.NewTime(st.PeriodStart), DeletedGPUSeconds: st.DeletedGPUSeconds}
	for _, uid := range st.DeletedWorkloads {
		l.DeletedWorkloads = append(l.DeletedWorkloads, string(uid))
	}
	return l
}

// LedgerFromStatus reads the durable ledger back.
func LedgerFromStatus(l *aifv1.Ledger) accounting.LedgerState {
	if l == nil {
		return accounting.LedgerState{}
	}
	st := accounting.LedgerState{PeriodStart: l.PeriodStart.UTC(), DeletedGPUSeconds: l.DeletedGPUSeconds}
	for _, uid := range l.DeletedWorkloads {
		st.DeletedWorkloads = append(st.DeletedWorkloads, types.UID(uid))
	}
	return st
}

// readyCondition says whether the tenant's Kueue objects exist and are active. A queue stopped because the
// budget is spent (held) is as declared: Ready, with BudgetExhausted saying why nothing is admitted.
func readyCondition(tq *aifv1.TenantQuota, obs *Observed, held bool) metav1.Condition {
	notReady := func(reason, msg string) metav1.Condition {
		return metav1.Condition{Type: aifv1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg}
	}
	if tq.DeletionTimestamp != nil {
		n := int32(0)
		if cq := obs.ClusterQueue; cq != nil {
			n = cq.Status.ReservingWorkloads
		}
		return notReady(aifv1.ReasonTerminating, fmt.Sprintf("new work is held; the tenant's queues are removed once its %d admitted workloads finish", n))
	}
	if missing := unknownClasses(tq, obs); len(missing) > 0 {
		return notReady(aifv1.ReasonGPUClassUnknown, fmt.Sprintf("GPU classes %s are neither configured nor discovered", strings.Join(missing, ", ")))
	}
	if len(obs.Conflicts) > 0 {
		var parts []string
		for _, ns := range sortedKeys(obs.Conflicts) {
			parts = append(parts, fmt.Sprintf("%s (TenantQuota %s)", ns, obs.Conflicts[ns]))
		}
		return notReady(aifv1.ReasonNamespaceConflict, "namespaces already belong to other tenants: "+strings.Join(parts, ", "))
	}
	var missing []string
	for _, ns := range obs.Namespaces(tq) {
		if !obs.Existing[ns] {
			missing = append(missing, ns)
		}
	}
	if len(missing) > 0 {
		return notReady(aifv1.ReasonNamespaceMissing, fmt.Sprintf("namespaces %s do not exist yet; their LocalQueues are created when they appear", strings.Join(missing, ", ")))
	}
	if draining := obs.Draining(tq); len(draining) > 0 {
		var parts []string
		for _, ns := range sortedKeys(draining) {
			parts = append(parts, fmt.Sprintf("%s (%d workloads)", ns, draining[ns]))
		}
		return notReady(aifv1.ReasonNamespaceInUse, "LocalQueues of removed namespaces wait for their queued and running work to finish: "+strings.Join(parts, ", "))
	}
	cq := obs.ClusterQueue
	if cq == nil {
		return notReady(aifv1.ReasonReconciling, "the ClusterQueue is being created")
	}
	active := apimeta.FindStatusCondition(cq.Status.Conditions, kueue.ClusterQueueActive)
	if held && (active == nil || active.Status != metav1.ConditionTrue) {
		return metav1.Condition{Type: aifv1.ConditionReady, Status: metav1.ConditionTrue, Reason: aifv1.ReasonBudgetHold,
			Message: fmt.Sprintf("ClusterQueue %s is held because the GPU-hour budget is spent; see BudgetExhausted", cq.Name)}
	}
	if active == nil || active.Status != metav1.ConditionTrue {
		msg := "Kueue has not activated the ClusterQueue yet"
		if active != nil {
			msg = fmt.Sprintf("Kueue: %s: %s", active.Reason, active.Message)
		}
		return notReady(aifv1.ReasonClusterQueueInactive, msg)
	}
	return metav1.Condition{Type: aifv1.ConditionReady, Status: metav1.ConditionTrue, Reason: aifv1.ReasonClusterQueueActive,
		Message: fmt.Sprintf("ClusterQueue %s admits work from %d namespaces", cq.Name, len(obs.LocalQueues))}
}

func budgetCondition(tq *aifv1.TenantQuota, b *aifv1.BudgetStatus, verdict *accounting.Budget) metav1.Condition {
	c := metav1.Condition{Type: aifv1.ConditionBudgetExhausted, Status: metav1.ConditionFalse}
	period := fmt.Sprintf("%s to %s", b.PeriodStart.UTC().Format(time.DateOnly), b.PeriodEnd.UTC().Format(time.DateOnly))
	switch {
	case verdict == nil:
		c.Reason, c.Message = aifv1.ReasonNoBudget, fmt.Sprintf("no GPU-hour budget; %s GPU-hours used from %s", b.UsedGPUHours, period)
	case verdict.Exhausted:
		c.Status, c.Reason = metav1.ConditionTrue, aifv1.ReasonBudgetExhausted
		c.Message = fmt.Sprintf("%s of %d GPU-hours used from %s; no new work is admitted (%s) until the next period or a larger budget",
			b.UsedGPUHours, tq.Spec.Budget.GPUHours, period, tq.Spec.Budget.OnExhausted)
	default:
		c.Reason = aifv1.ReasonWithinBudget
		c.Message = fmt.Sprintf("%s of %d GPU-hours used from %s", b.UsedGPUHours, tq.Spec.Budget.GPUHours, period)
	}
	return c
}

func unknownClasses(tq *aifv1.TenantQuota, obs *Observed) []string {
	var out []string
	for _, g := range tq.Spec.GPUs {
		if _, ok := obs.Classes[g.GPUClass]; !ok {
			out = append(out, g.GPUClass)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
