// Package tenantquota holds the TenantQuota controller: it keeps a tenant's Kueue ClusterQueue and LocalQueues in
// line with its TenantQuota, mirrors Kueue's figures into the status, and keeps the GPU-hour budget ledger.
package tenantquota

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// reconcile runs one pass: observe, decide one plan of writes with the status write inside it, apply it. A
// write that fails stops the plan, and the status then says which write failed. The TenantQuota's own finalizer
// is added before the pass reads and removed once the plan let its last queue go.
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
	now := r.Clock.Now().UTC()
	obs, err := r.observe(ctx, tq, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	d, err := r.decide(tq, obs, now)
	if err != nil {
		return ctrl.Result{}, r.showFailure(ctx, tq, err)
	}
	err = apply.Apply(ctx, r.Client, d.Plan)
	written := tq
	if d.Next.ResourceVersion != tq.ResourceVersion {
		written = d.Next // the status write was made: a failure after it is shown on the object it returned
		r.announce(d.Next, &tq.Status)
	}
	if err != nil {
		return ctrl.Result{}, r.showFailure(ctx, written, err)
	}
	observeMetrics(d.Next, d.Account, d.Reserved)
	if d.Finalize {
		return ctrl.Result{}, r.removeFinalizer(ctx, d.Next)
	}
	return ctrl.Result{RequeueAfter: d.RequeueAfter}, nil
}

// decision is what one pass of the TenantQuota controller decided.
type decision struct {
	// Plan is the pass's writes in order: the queues, the workloads' accounting, the status (the ledger), the
	// budget checks and stops, the release of booked workloads, then the queues of departed namespaces and, for
	// a tenant going away, all its queues.
	Plan apply.Plan
	// Next is the TenantQuota with its next status; the status write in Plan updates it.
	Next *aifv1.TenantQuota
	// Finalize is true when the plan removes the tenant's last queue: its finalizer goes after the plan.
	Finalize     bool
	RequeueAfter time.Duration
	Account      accounting.Account
	Reserved     int64
}

// decide computes the ledger, the budget verdict and the next status from what was observed, and plans the
// writes. Its only failure is a budget AdmissionCheck that another controller owns. The order of the plan keeps
// the budget hard across a crash: the workloads' accounting (finalizer, period baseline) is made before any
// budget check turns Ready, and the ledger is saved before the finalizers of the workloads it books are released
// and before a departed namespace's LocalQueue goes. The budget checks are answered after the status write,
// which fails on a TenantQuota older than the server's: no grant is made from a ledger that misses a booking.
func (r *Reconciler) decide(tq *aifv1.TenantQuota, obs *Observed, now time.Time) (decision, error) {
	period := accounting.PeriodAt(budgetPeriod(tq), now)
	usage := r.usage(tq, obs)
	d := decision{Account: accounting.Book(LedgerFromStatus(tq.Status.Ledger), period, now, usage)}
	var verdict *accounting.Budget
	var res *accounting.Reservation
	if b := tq.Spec.Budget; b != nil {
		verdict = ptr.To(accounting.Judge(b.GPUHours, d.Account.UsedGPUSeconds, d.Account.RunningGPUs))
		res = ptr.To(accounting.Reserve(b.GPUHours*3600, d.Account.UsedGPUSeconds, accounting.PeriodWord(b.Period), now, usage))
		d.Reserved = res.ReservedGPUSeconds
	}
	queues, err := planQueues(tq, obs, r.Config, StopPolicy(tq, verdict != nil && verdict.Exhausted))
	if err != nil {
		return d, err
	}
	leaving := tq.DeletionTimestamp != nil
	ledger := planLedger(ledgerInput{Workloads: obs.Workloads, Account: d.Account, Reservation: res, Bounds: boundsOf(usage),
		Leaving: leaving, Now: now, Granted: r.grants.add, Stopped: r.stopped})
	d.Next = tq.DeepCopy()
	d.Next.Status = ComputeStatus(tq, obs, d.Account, period, verdict, res)
	d.Plan = append(append(queues, ledger.Prepare...), apply.Write{Verb: apply.Update, Status: true, Object: d.Next, Current: tq, Why: "the ledger and what Kueue reports"})
	d.Plan = append(append(d.Plan, ledger.Answer...), planDeparted(tq, obs)...)
	if leaving && !ledger.More {
		var last apply.Plan
		last, d.Finalize = planRemoval(obs)
		d.Plan = append(d.Plan, last...)
	}
	d.RequeueAfter = requeueAfter(now, period, verdict, res, d.Account.RunningGPUs, obs.Reprobe)
	if ledger.More {
		d.RequeueAfter = min(d.RequeueAfter, moreWritesAfter)
	}
	return d, nil
}

// stopped records the event of a workload the operator stopped at its run bound.
func (r *Reconciler) stopped(wl *kueue.Workload, bound int64) {
	if r.Recorder != nil {
		r.Recorder.Eventf(wl, nil, corev1.EventTypeWarning, "RunBoundReached", "Deactivate", "the workload was admitted for its run bound of %s; the operator stopped it",
			time.Duration(bound)*time.Second)
	}
}

// probe runs the gating probe on the tenant's namespaces as they were read, filling obs.Ungated, obs.Probed and
// obs.Reprobe. A namespace whose labels this pass writes is probed by the next pass, which their change brings.
func (r *Reconciler) probe(ctx context.Context, tq *aifv1.TenantQuota, obs *Observed, now time.Time) {
	if tq.DeletionTimestamp != nil {
		return
	}
	owned := map[string]map[string]string{}
	for _, ns := range obs.Namespaces(tq) {
		if l, ok := obs.NamespaceLabels[ns]; ok {
			owned[ns] = l
		}
	}
	obs.Ungated, obs.Probed, obs.Reprobe = r.gating.Ungated(ctx, r.Client, tq.Name, owned, now)
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

// observe reads the tenant's world from the cache, and runs the gating probe (a dry run that stores nothing).
func (r *Reconciler) observe(ctx context.Context, tq *aifv1.TenantQuota, now time.Time) (*Observed, error) {
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
	if err := r.workloads(ctx, tq, obs); err != nil {
		return nil, err
	}
	r.probe(ctx, tq, obs, now)
	return obs, nil
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
	// The cache lists in no set order; the plan's order, and which writes the bound leaves, must not vary.
	slices.SortFunc(obs.Workloads, func(a, b kueue.Workload) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
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
		next := tq.DeepCopy()
		next.Status.Conditions = conds
		if err := r.Client.Status().Update(ctx, next); err != nil {
			return fmt.Errorf("writing status: %w", err)
		}
		r.announce(next, &tq.Status)
		return nil
	})
}

// planDeparted deletes the LocalQueues of namespaces that left the spec once nothing of the tenant waits or
// runs there. The plan makes them after the ledger that booked their workloads was saved and their finalizers
// released.
func planDeparted(tq *aifv1.TenantQuota, obs *Observed) apply.Plan {
	var plan apply.Plan
	for _, ns := range sortedKeys(obs.Departing(tq)) {
		plan = append(plan, apply.Write{Verb: apply.Delete, Object: obs.LocalQueues[ns], Why: "namespace " + ns + " left the tenant"})
	}
	return plan
}

// planRemoval deletes the queues of a tenant on its way out once none of its workloads holds quota (the
// ClusterQueue's status changes when they finish, and that brings the pass back). done is true when it does.
func planRemoval(obs *Observed) (plan apply.Plan, done bool) {
	if cq := obs.ClusterQueue; cq != nil && cq.Status.ReservingWorkloads > 0 {
		return nil, false
	}
	for _, ns := range sortedKeys(obs.LocalQueues) {
		plan = append(plan, apply.Write{Verb: apply.Delete, Object: obs.LocalQueues[ns], Why: "the tenant is deleted"})
	}
	if obs.ClusterQueue != nil {
		plan = append(plan, apply.Write{Verb: apply.Delete, Object: obs.ClusterQueue, Why: "the tenant is deleted"})
	}
	return plan, true
}

// removeFinalizer lets a deleted TenantQuota go once its queues are gone.
func (r *Reconciler) removeFinalizer(ctx context.Context, tq *aifv1.TenantQuota) error {
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
