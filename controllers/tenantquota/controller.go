// Package tenantquota holds the TenantQuota controller: it keeps a tenant's Kueue ClusterQueue and LocalQueues in
// line with its TenantQuota, mirrors Kueue's figures into the status, and keeps the GPU-hour budget ledger.
package tenantquota

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/conflict"
	"github.com/aifactory-eu/aifactory-operator/controllers/index"
)

// Reconciler keeps a tenant's Kueue ClusterQueue, LocalQueues and budget ledger in line with its TenantQuota,
// and answers the budget AdmissionCheck of its workloads.
type Reconciler struct {
	Client   client.Client
	Config   *configv1.Configuration
	Recorder events.EventRecorder
	// Clock tells the time of the budget ledger; tests inject a fake one.
	Clock clock.PassiveClock

	gating gatingProbe
	grants grants
}

// refreshEvery bounds how old the use shown in status is while the tenant's work runs.
const refreshEvery = time.Minute

// +kubebuilder:rbac:groups=aifactory.eu,resources=tenantquotas,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=aifactory.eu,resources=tenantquotas/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=aifactory.eu,resources=tenantquotas/finalizers,verbs=update
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=clusterqueues,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=localqueues,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=workloads,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=workloads/status,verbs=get;patch
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=admissionchecks,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=admissionchecks/status,verbs=get;update
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=resourceflavors,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;patch
// The gating probe creates a Pod as a dry run only (nothing is stored); RBAC cannot grant dry runs alone.
// +kubebuilder:rbac:groups="",resources=pods,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one tenant's Kueue objects, ledger and status up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res, err := r.reconcile(ctx, req)
	return conflict.Ignore(ctx, res, err)
}

// reconcile runs one pass. Its writes come in the order that keeps the budget hard across a crash: the
// workloads' accounting (finalizer, period baseline) before any budget check turns Ready, the ledger before the
// finalizers of the workloads it books are released, and the ledger before a departed namespace's LocalQueue
// goes. The budget checks are answered after the status write, which fails on a TenantQuota older than the
// server's: no grant is made from a ledger that misses a booking.
func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	tq := &aifv1.TenantQuota{}
	if err := r.Client.Get(ctx, req.NamespacedName, tq); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if tq.DeletionTimestamp == nil && controllerutil.AddFinalizer(tq, aifv1.CleanupFinalizer) {
		if err := r.Client.Update(ctx, tq); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
	}
	obs, err := r.observe(ctx, tq)
	if err != nil {
		return ctrl.Result{}, err
	}
	now := r.Clock.Now().UTC()
	period := accounting.PeriodAt(budgetPeriod(tq), now)
	usage := r.usage(tq, obs)
	acc := accounting.Book(LedgerFromStatus(tq.Status.Ledger), period, now, usage)
	var verdict *accounting.Budget
	var res *accounting.Reservation
	if b := tq.Spec.Budget; b != nil {
		verdict = ptr.To(accounting.Judge(b.GPUHours, acc.UsedGPUSeconds, acc.RunningGPUs))
		res = ptr.To(accounting.Reserve(b.GPUHours*3600, acc.UsedGPUSeconds, accounting.PeriodWord(b.Period), now, usage))
	}
	plan, err := planQueues(tq, obs, r.Config, StopPolicy(tq, verdict != nil && verdict.Exhausted))
	if err == nil {
		err = apply.Apply(ctx, r.Client, plan)
	}
	var prepared map[types.UID]bool
	if err == nil {
		prepared, err = r.prepareWorkloads(ctx, obs.Workloads, acc.Baselines, tq.DeletionTimestamp == nil)
	}
	if err != nil {
		return ctrl.Result{}, r.showFailure(ctx, tq, err)
	}
	reprobe := r.probe(ctx, tq, obs, now)
	old := tq.Status.DeepCopy()
	if err := r.writeStatus(ctx, tq, ComputeStatus(tq, obs, acc, period, verdict, res)); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.answerBudget(ctx, tq, obs, res, usage, now, prepared); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.release(ctx, obs.Workloads, acc.Release, tq.DeletionTimestamp != nil); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.removeDeparted(ctx, tq, obs); err != nil {
		return ctrl.Result{}, err
	}
	r.announce(tq, old)
	var reserved int64
	if res != nil {
		reserved = res.ReservedGPUSeconds
	}
	observeMetrics(tq, acc, reserved)
	if tq.DeletionTimestamp != nil {
		return ctrl.Result{}, r.finalize(ctx, tq, obs)
	}
	return ctrl.Result{RequeueAfter: requeueAfter(now, period, verdict, res, acc.RunningGPUs, reprobe)}, nil
}

// answerBudget writes the budget checks that accounting.Reserve decided and stops the runs that reached a bound only
// the operator enforces. A tenant on its way out answers nothing: its queue is held.
func (r *Reconciler) answerBudget(ctx context.Context, tq *aifv1.TenantQuota, obs *Observed, res *accounting.Reservation, usage []accounting.WorkloadUsage, now time.Time, prepared map[types.UID]bool) error {
	if tq.DeletionTimestamp != nil || res == nil {
		return nil
	}
	if err := r.setChecks(ctx, obs.Workloads, res, now, prepared); err != nil {
		return err
	}
	return r.stopAtBound(ctx, obs.Workloads, res, boundsOf(usage))
}

// probe runs the gating probe on the tenant's namespaces, filling obs.Ungated and obs.Probed, and returns when
// it is due again.
func (r *Reconciler) probe(ctx context.Context, tq *aifv1.TenantQuota, obs *Observed, now time.Time) time.Duration {
	if tq.DeletionTimestamp != nil {
		return 0
	}
	owned := map[string]map[string]string{}
	for _, ns := range obs.Namespaces(tq) {
		if l, ok := obs.NamespaceLabels[ns]; ok {
			owned[ns] = l
		}
	}
	var reprobe time.Duration
	obs.Ungated, obs.Probed, reprobe = r.gating.Ungated(ctx, r.Client, tq.Name, owned, now)
	return reprobe
}

// requeueAfter is when the pass must run again without an event: at the end of the period, when running GPUs
// would spend the rest of the budget, when a run reaches a bound that only the operator enforces, when the
// gating probe is due, and every refreshEvery while work runs, so that the use in status is never older.
func requeueAfter(now time.Time, p accounting.Period, verdict *accounting.Budget, res *accounting.Reservation, running int64, reprobe time.Duration) time.Duration {
	after := nextDeadline(now, p, verdict)
	for _, d := range []time.Duration{reprobe, refreshIf(running > 0)} {
		if d > 0 {
			after = min(after, d)
		}
	}
	if res != nil && res.NextBound > 0 {
		after = min(after, res.NextBound)
	}
	return after
}

func refreshIf(running bool) time.Duration {
	if running {
		return refreshEvery
	}
	return 0
}

func boundsOf(usage []accounting.WorkloadUsage) map[types.UID]int64 {
	out := make(map[types.UID]int64, len(usage))
	for _, u := range usage {
		out[u.UID] = u.Bound
	}
	return out
}

// nextDeadline is when the ledger's verdict can next change by the passing of time alone: the end of the
// period, or the moment the running GPUs spend the remaining budget.
func nextDeadline(now time.Time, p accounting.Period, verdict *accounting.Budget) time.Duration {
	d := p.End.Sub(now)
	if verdict != nil && verdict.ExhaustedIn > 0 && verdict.ExhaustedIn < d {
		d = verdict.ExhaustedIn
	}
	return d
}

func budgetPeriod(tq *aifv1.TenantQuota) aifv1.BudgetPeriod {
	if tq.Spec.Budget == nil {
		return aifv1.PeriodMonth
	}
	return tq.Spec.Budget.Period
}

// observe reads the tenant's world from the cache.
func (r *Reconciler) observe(ctx context.Context, tq *aifv1.TenantQuota) (*Observed, error) {
	obs := &Observed{Existing: map[string]bool{}, Present: map[string]bool{}, NamespaceLabels: map[string]map[string]string{}, LocalQueues: map[string]*kueue.LocalQueue{}}
	var err error
	if obs.Classes, err = classes.Known(ctx, r.Client); err != nil {
		return nil, err
	}
	var tenants aifv1.TenantQuotaList
	if err := r.Client.List(ctx, &tenants); err != nil {
		return nil, fmt.Errorf("listing tenant quotas: %w", err)
	}
	obs.Conflicts = Conflicts(tq, tenants.Items)
	for _, ns := range tq.Spec.Namespaces {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		err := r.Client.Get(ctx, types.NamespacedName{Name: ns}, meta)
		if client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("reading namespace %s: %w", ns, err)
		}
		obs.Present[ns] = err == nil
		obs.Existing[ns] = err == nil && meta.DeletionTimestamp == nil
		if obs.Existing[ns] {
			obs.NamespaceLabels[ns] = meta.Labels
		}
	}
	cq := &kueue.ClusterQueue{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: ClusterQueueName(tq.Name)}, cq); {
	case err == nil:
		obs.ClusterQueue = cq
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading cluster queue: %w", err)
	}
	var lqs kueue.LocalQueueList
	if err := r.Client.List(ctx, &lqs, client.MatchingLabels{aifv1.TenantLabel: tq.Name}); err != nil {
		return nil, fmt.Errorf("listing local queues: %w", err)
	}
	for i := range lqs.Items {
		obs.LocalQueues[lqs.Items[i].Namespace] = &lqs.Items[i]
	}
	if tq.Spec.Budget != nil {
		ac := &kueue.AdmissionCheck{}
		switch err := r.Client.Get(ctx, types.NamespacedName{Name: aifv1.BudgetCheckName}, ac); {
		case err == nil:
			obs.BudgetCheck = ac
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("reading admission check: %w", err)
		}
	}
	return obs, r.workloads(ctx, tq, obs)
}

// workloads reads the tenant's workloads: every workload in its namespaces (also while they are being
// deleted), whatever queue it names, and in namespaces that left the spec, those of the tenant's LocalQueue
// there.
func (r *Reconciler) workloads(ctx context.Context, tq *aifv1.TenantQuota, obs *Observed) error {
	for _, ns := range obs.Namespaces(tq) {
		if !obs.Present[ns] {
			continue // a namespace being deleted still counts: its workloads are booked as they go
		}
		var wls kueue.WorkloadList
		if err := r.Client.List(ctx, &wls, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("listing workloads in %s: %w", ns, err)
		}
		obs.Workloads = append(obs.Workloads, wls.Items...)
	}
	for ns := range obs.Draining(tq) {
		var wls kueue.WorkloadList
		if err := r.Client.List(ctx, &wls, client.InNamespace(ns), client.MatchingFields{index.WorkloadQueue: obs.LocalQueues[ns].Name}); err != nil {
			return fmt.Errorf("listing workloads in %s: %w", ns, err)
		}
		obs.Workloads = append(obs.Workloads, wls.Items...)
	}
	return nil
}

// usage reads what the ledger and the budget check need of each workload. Workloads of a namespace that left
// the spec and has no work left depart: they are booked once, like deleted ones, and their LocalQueue goes.
func (r *Reconciler) usage(tq *aifv1.TenantQuota, obs *Observed) []accounting.WorkloadUsage {
	gpuResources := map[corev1.ResourceName]bool{configv1.DefaultGPUResource: true}
	for _, c := range obs.Classes {
		gpuResources[c.Resource] = true
	}
	isGPU := func(r corev1.ResourceName) bool { return gpuResources[r] }
	departing := obs.Departing(tq)
	out := make([]accounting.WorkloadUsage, 0, len(obs.Workloads))
	for i := range obs.Workloads {
		wl := &obs.Workloads[i]
		u := accounting.UsageOf(wl, isGPU)
		u.Bound, u.BoundEnforced = accounting.RunBound(tq.Spec.Budget, wl.Spec.MaximumExecutionTimeSeconds)
		switch {
		case u.Check == kueue.CheckStatePending && r.grants.pending(wl):
			u.Check = kueue.CheckStateReady // granted by this process; the cache has yet to show it
		case u.Check != kueue.CheckStatePending || wl.DeletionTimestamp != nil:
			r.grants.forget(wl.UID)
		}
		if departing[wl.Namespace] {
			u.Deleting = true
		}
		out = append(out, u)
	}
	return out
}

// showFailure writes the status of a pass whose writes stopped at err, and returns err for the retry. The status
// is the last one written (so the ledger never moves ahead of the workload records it depends on) with Ready
// false naming the write. A conflict writes nothing: the newer object's event brings the pass back.
func (r *Reconciler) showFailure(ctx context.Context, tq *aifv1.TenantQuota, err error) error {
	return apply.ShowFailure(err, tq.Status.Conditions, tq.Generation, func(conds []metav1.Condition) error {
		st, old := *tq.Status.DeepCopy(), tq.Status.DeepCopy()
		st.Conditions = conds
		if err := r.writeStatus(ctx, tq, st); err != nil {
			return err
		}
		r.announce(tq, old)
		return nil
	})
}

// removeDeparted deletes the LocalQueues of namespaces that left the spec once nothing of the tenant waits or
// runs there. It runs after the ledger that booked their workloads was saved and their finalizers released.
func (r *Reconciler) removeDeparted(ctx context.Context, tq *aifv1.TenantQuota, obs *Observed) error {
	if tq.DeletionTimestamp != nil {
		return nil
	}
	for ns := range obs.Departing(tq) {
		if err := r.Client.Delete(ctx, obs.LocalQueues[ns]); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting local queue in %s: %w", ns, err)
		}
		delete(obs.LocalQueues, ns)
	}
	return nil
}

// prepareWorkloads records period baselines and, unless the tenant is going away, puts the accounting finalizer
// on workloads that hold quota or have held GPUs, so that their seconds reach the ledger even if they are
// deleted while the operator is down. A workload gets it while Kueue has reserved its quota, before the budget
// check lets Kueue admit it.
func (r *Reconciler) prepareWorkloads(ctx context.Context, wls []kueue.Workload, baselines map[types.UID]accounting.Baseline, counting bool) (map[types.UID]bool, error) {
	prepared := map[types.UID]bool{}
	for i := range wls {
		wl := &wls[i]
		b, record := baselines[wl.UID]
		used := apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadQuotaReserved) ||
			apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadAdmitted) || wl.Status.AccumulatedPastExecutionTimeSeconds != nil
		addFinalizer := counting && used && wl.DeletionTimestamp == nil && !controllerutil.ContainsFinalizer(wl, accounting.AccountingFinalizer)
		past, recordPast := pastToRecord(wl)
		if !record && !addFinalizer && !recordPast {
			continue
		}
		patch := client.MergeFromWithOptions(wl.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if record {
			metav1.SetMetaDataAnnotation(&wl.ObjectMeta, accounting.BaselineAnnotation, b.String())
		}
		if recordPast {
			metav1.SetMetaDataAnnotation(&wl.ObjectMeta, accounting.PastSecondsAnnotation, past)
		}
		if addFinalizer {
			controllerutil.AddFinalizer(wl, accounting.AccountingFinalizer)
		}
		if err := r.Client.Patch(ctx, wl, patch); client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("preparing workload %s/%s for accounting: %w", wl.Namespace, wl.Name, err)
		}
		prepared[wl.UID] = true
	}
	return prepared, nil
}

// pastToRecord is the admitted seconds to record on a workload whose budget check waits for an answer, before
// it is granted: what Kueue's maximum execution time would wipe (see accounting.PastSeconds). Once Kueue has stopped
// the workload there, the record is what accounting.PastSeconds adds back and stays as it is: recording the sum again
// would count the last admission once more on every pass.
func pastToRecord(wl *kueue.Workload) (string, bool) {
	waiting := false
	for _, c := range wl.Status.AdmissionChecks {
		waiting = waiting || (c.Name == aifv1.BudgetCheckName && c.State == kueue.CheckStatePending)
	}
	if !waiting || wl.DeletionTimestamp != nil || accounting.StoppedAtMaxExecution(wl) {
		return "", false
	}
	past := strconv.FormatInt(int64(ptr.Deref(wl.Status.AccumulatedPastExecutionTimeSeconds, 0)), 10)
	if past == "0" && wl.Annotations[accounting.PastSecondsAnnotation] == "" {
		return "", false
	}
	return past, wl.Annotations[accounting.PastSecondsAnnotation] != past
}

// release removes the accounting finalizer from the listed workloads (all of them when the tenant goes away),
// once the ledger that counts them is saved.
func (r *Reconciler) release(ctx context.Context, wls []kueue.Workload, uids []types.UID, all bool) error {
	listed := map[types.UID]bool{}
	for _, uid := range uids {
		listed[uid] = true
	}
	for i := range wls {
		wl := &wls[i]
		if (!all && !listed[wl.UID]) || !controllerutil.ContainsFinalizer(wl, accounting.AccountingFinalizer) {
			continue
		}
		patch := client.MergeFromWithOptions(wl.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.RemoveFinalizer(wl, accounting.AccountingFinalizer)
		if err := r.Client.Patch(ctx, wl, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("releasing workload %s/%s: %w", wl.Namespace, wl.Name, err)
		}
	}
	return nil
}

// writeStatus writes the status if it changed. It is an update, not a patch: the ledger in it was computed from
// the TenantQuota as read, and a pass that read a stale copy must fail on the resource version rather than
// overwrite a newer ledger.
func (r *Reconciler) writeStatus(ctx context.Context, tq *aifv1.TenantQuota, st aifv1.TenantQuotaStatus) error {
	if equality.Semantic.DeepEqual(tq.Status, st) {
		return nil
	}
	tq.Status = st
	if err := r.Client.Status().Update(ctx, tq); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
}

// finalize removes the tenant's queues once none of its workloads holds quota, then lets the TenantQuota go.
func (r *Reconciler) finalize(ctx context.Context, tq *aifv1.TenantQuota, obs *Observed) error {
	if cq := obs.ClusterQueue; cq != nil && cq.Status.ReservingWorkloads > 0 {
		return nil // the ClusterQueue's status changes when they finish, and that brings us back
	}
	for _, lq := range obs.LocalQueues {
		if err := r.Client.Delete(ctx, lq); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting local queue %s/%s: %w", lq.Namespace, lq.Name, err)
		}
	}
	if obs.ClusterQueue != nil {
		if err := r.Client.Delete(ctx, obs.ClusterQueue); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting cluster queue: %w", err)
		}
	}
	if controllerutil.RemoveFinalizer(tq, aifv1.CleanupFinalizer) {
		if err := r.Client.Update(ctx, tq); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("removing finalizer: %w", err)
		}
	}
	return nil
}

// announce records events for condition changes people care about, after the status write succeeded.
func (r *Reconciler) announce(tq *aifv1.TenantQuota, old *aifv1.TenantQuotaStatus) {
	apply.Record(r.Recorder, tq, apply.ConditionEvents(old.Conditions, tq.Status.Conditions, func(c metav1.Condition) bool {
		return (c.Type == aifv1.ConditionReady && c.Status != metav1.ConditionTrue) ||
			(c.Type == aifv1.ConditionBudgetExhausted && c.Status == metav1.ConditionTrue)
	}, aifv1.ConditionReady, aifv1.ConditionBudgetExhausted))
}
