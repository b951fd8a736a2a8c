// Package trainingjob holds the TrainingJob controller: once a run's references check out, it creates a headless
// Service and a suspended Indexed Job in the tenant's LocalQueue, and mirrors Kueue's Workload and the Job into
// the TrainingJob's status.
package trainingjob

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
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
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/conflict"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasets"
	"github.com/aifactory-eu/aifactory-operator/controllers/index"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenancy"
)

// Reconciler runs a TrainingJob as a suspended Indexed Job that Kueue admits, and mirrors its state.
type Reconciler struct {
	Client   client.Client
	Config   *configv1.Configuration
	Clock    clock.PassiveClock
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=aifactory.eu,resources=trainingjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=aifactory.eu,resources=trainingjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=aifactory.eu,resources=datasetmounts,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=workloads,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=localqueues;resourceflavors,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile observes a run and its current attempt, derives the next status and the writes to its children
// (Step), writes the status when it changed, then makes those writes.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res, err := r.reconcile(ctx, req)
	return conflict.Ignore(ctx, res, err)
}

func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	tj := &aifv1.TrainingJob{}
	if err := r.Client.Get(ctx, req.NamespacedName, tj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if tj.DeletionTimestamp != nil {
		return ctrl.Result{}, nil // owned children go with it
	}
	obs, in, err := r.observe(ctx, tj)
	if err != nil {
		return ctrl.Result{}, err
	}
	st, act := Step(tj, obs)
	next := tj.DeepCopy()
	next.Status = st
	err = apply.Apply(ctx, r.Client, Plan(tj, next, obs, in, act))
	if next.ResourceVersion != tj.ResourceVersion {
		// The status write, the plan's first, was made.
		r.announce(next, &tj.Status)
		recordMetrics(obs.Tenant, next, obs.Job, &tj.Status, &next.Status, func(class string) int32 { return obs.Classes[class].PowerWatts })
		tj = next
	}
	if err != nil {
		if apply.Refused(err) && obs.Job == nil && !tj.Spec.Suspend && !done(tj.Status.Phase) {
			r.showRefusal(ctx, tj, err)
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: act.RequeueAfter}, nil
}

// Plan turns a pass's decision into writes, in the order that keeps a run safe across a crash: the status first,
// so that a new attempt is recorded before its Job exists and a pass repeated after a crash reaches the same Job
// by name; then the unfinished Jobs of earlier attempts go; then the Service and the current attempt's Job
// (built from the status just written); then the workload is suspended or resumed.
func Plan(tj, next *aifv1.TrainingJob, obs Observed, in Input, act Actions) apply.Plan {
	plan := apply.Plan{{Verb: apply.Update, Status: true, Object: next, Current: tj, Why: "the run's status"}}
	for _, j := range act.DeleteJobs {
		opts := append([]client.DeleteOption{client.Preconditions{UID: &j.UID}}, background...)
		plan = append(plan, apply.Write{Verb: apply.Delete, Object: j, DeleteOptions: opts, Why: "an earlier attempt's Job"})
	}
	if obs.Verdict.Accepted && !obs.ServiceExists {
		plan = append(plan, apply.Write{Verb: apply.Create, Object: Service(tj), IfMissing: true, Why: "the workers' host names"})
	}
	if act.CreateJob && obs.Verdict.Accepted {
		in.Attempt, in.Restarts = CurrentAttempt(&next.Status), next.Status.Restarts
		in.MaxExecSeconds = MaxExecSeconds(obs.Bound, &next.Status)
		// The name is the attempt's and an existing Job's owner is checked when it is read: one that exists
		// already is the one an earlier pass made.
		plan = append(plan, apply.Write{Verb: apply.Create, Object: Job(tj, in), IfMissing: true, Why: "the current attempt"})
	}
	if act.SetActive != nil && obs.Workload != nil {
		plan = append(plan, setActive(obs.Workload, *act.SetActive, act.Deactivation))
	}
	return plan
}

var background = []client.DeleteOption{client.PropagationPolicy(metav1.DeletePropagationBackground)}

// showRefusal writes the refusal into the run's status, so that kubectl shows why the run does not start, and
// records it as an event. The caller returns the write's error, so the write is retried with backoff.
func (r *Reconciler) showRefusal(ctx context.Context, tj *aifv1.TrainingJob, err error) {
	if tj.Status.Reason == aifv1.ReasonChildRefused && tj.Status.ObservedGeneration == tj.Generation {
		return // the first refusal of this spec stands; a retry's message (a quota's counts) is not worth a write
	}
	st := Refused(tj, err)
	if equality.Semantic.DeepEqual(tj.Status, st) {
		return
	}
	old := tj.Status
	tj.Status = st
	if werr := r.Client.Status().Update(ctx, tj); werr != nil {
		ctrl.LoggerFrom(ctx).Error(werr, "writing the refusal into the status", "refusal", err.Error())
		return
	}
	r.announce(tj, &old)
}

// observe reads the run's surroundings, its acceptance, and its current attempt's Job, workload and pods. Of a
// run that ended it reads only what Step still looks after: the workload of a run that failed at its deadline.
func (r *Reconciler) observe(ctx context.Context, tj *aifv1.TrainingJob) (Observed, Input, error) {
	if done(tj.Status.Phase) {
		obs, err := r.observeEnded(ctx, tj)
		return obs, Input{}, err
	}
	s, err := r.surroundings(ctx, tj)
	if err != nil {
		return Observed{}, Input{}, err
	}
	obs := Observed{Verdict: Accept(tj, s), DatasetMounts: s.DatasetMounts, Classes: s.Classes, Now: r.Clock.Now()}
	obs.Bound = RunBound(tj, s.Tenant)
	if s.Tenant != nil {
		obs.Tenant = s.Tenant.Name
		if c := apimeta.FindStatusCondition(s.Tenant.Status.Conditions, aifv1.ConditionBudgetExhausted); c != nil && c.Status == metav1.ConditionTrue {
			obs.Hold = fmt.Sprintf("tenant %s: %s", s.Tenant.Name, c.Message)
		}
	}
	in := Input{Attempt: CurrentAttempt(&tj.Status), Restarts: tj.Status.Restarts}
	if obs.Verdict.Accepted {
		in.Datasets = mounts(tj, s.DatasetMounts)
		if c, ok := s.Classes[tj.Spec.GPUClass]; ok {
			in.Class = &c
		}
		if ck := tj.Spec.Checkpoint; ck != nil {
			in.Checkpoint = mount(s.DatasetMounts[ck.DatasetMount], ck.DatasetMount, ck.MountPath, false)
		}
		obs.Shape = Shape(tj, in)
	}
	obs.Job, obs.Workload, err = r.attempt(ctx, tj, in.Attempt)
	if err != nil {
		return obs, in, err
	}
	if obs.Verdict.Accepted {
		if obs.ServiceExists, err = r.serviceExists(ctx, tj); err != nil {
			return obs, in, err
		}
	}
	if obs.Job == nil && obs.Verdict.Accepted {
		obs.Verdict = r.pathsResolve(tj, s.DatasetMounts, obs.Verdict)
	}
	if obs.Superseded, err = r.superseded(ctx, tj, JobName(tj, in.Attempt)); err != nil || obs.Job == nil {
		return obs, in, err
	}
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(tj.Namespace), client.MatchingLabels{batchv1.JobNameLabel: obs.Job.Name}); err != nil {
		return obs, in, fmt.Errorf("listing pods: %w", err)
	}
	for _, p := range pods.Items {
		if metav1.IsControlledBy(&p, obs.Job) {
			obs.Pods = append(obs.Pods, p)
		}
	}
	return obs, in, nil
}

func (r *Reconciler) observeEnded(ctx context.Context, tj *aifv1.TrainingJob) (Observed, error) {
	var obs Observed
	var err error
	if tj.Status.Reason == aifv1.ReasonDeadlineExceeded {
		obs.Job, obs.Workload, err = r.attempt(ctx, tj, CurrentAttempt(&tj.Status))
	}
	return obs, err
}

func (r *Reconciler) serviceExists(ctx context.Context, tj *aifv1.TrainingJob) (bool, error) {
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: tj.Namespace, Name: ServiceName(tj)}, &corev1.Service{})
	if client.IgnoreNotFound(err) != nil {
		return false, fmt.Errorf("reading service: %w", err)
	}
	return err == nil, nil
}

// superseded lists the run's unfinished Jobs other than the current attempt's.
func (r *Reconciler) superseded(ctx context.Context, tj *aifv1.TrainingJob, current string) ([]*batchv1.Job, error) {
	var jobs batchv1.JobList
	if err := r.Client.List(ctx, &jobs, client.InNamespace(tj.Namespace), client.MatchingLabels{aifv1.TrainingJobLabel: JobLabel(tj)}); err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	var out []*batchv1.Job
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if _, c := finished(j, nil); j.Name != current && c == nil && j.DeletionTimestamp == nil && metav1.IsControlledBy(j, tj) {
			out = append(out, j)
		}
	}
	return out, nil
}

// attempt reads the Job of an attempt and its Kueue workload (nil until Kueue created it).
func (r *Reconciler) attempt(ctx context.Context, tj *aifv1.TrainingJob, attempt int32) (*batchv1.Job, *kueue.Workload, error) {
	job := &batchv1.Job{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: tj.Namespace, Name: JobName(tj, attempt)}, job); {
	case apierrors.IsNotFound(err):
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading job: %w", err)
	case !metav1.IsControlledBy(job, tj):
		return nil, nil, fmt.Errorf("job %s exists and does not belong to this TrainingJob", job.Name)
	}
	var wls kueue.WorkloadList
	if err := r.Client.List(ctx, &wls, client.InNamespace(tj.Namespace), client.MatchingFields{index.WorkloadOwnerJob: job.Name}); err != nil {
		return nil, nil, fmt.Errorf("listing workloads: %w", err)
	}
	for i := range wls.Items {
		if metav1.IsControlledBy(&wls.Items[i], job) {
			return job, &wls.Items[i], nil
		}
	}
	return job, nil, nil
}

// setActive suspends (false) or resumes (true) a workload in Kueue: Kueue evicts an inactive workload, which
// stops its Job's workers and releases its quota, and queues it again once it is active.
func setActive(wl *kueue.Workload, active bool, why string) apply.Write {
	want := wl.DeepCopy()
	want.Spec.Active = ptr.To(active)
	if active {
		delete(want.Annotations, aifv1.DeactivatedAnnotation)
	} else {
		metav1.SetMetaDataAnnotation(&want.ObjectMeta, aifv1.DeactivatedAnnotation, why)
	}
	return apply.Write{Verb: apply.Patch, Object: want, Current: wl, Why: fmt.Sprintf("spec.active=%t", active)}
}

// announce records an event when the run's phase or reason changed, after the status write succeeded.
func (r *Reconciler) announce(tj *aifv1.TrainingJob, old *aifv1.TrainingJobStatus) {
	st := &tj.Status
	if old.Phase == st.Phase && old.Reason == st.Reason {
		return
	}
	warning := st.Phase == aifv1.PhaseFailed || st.Phase == aifv1.PhaseRestarting || st.Reason == aifv1.ReasonChildRefused ||
		st.Reason == aifv1.ReasonPreempted || st.Reason == aifv1.ReasonEvicted
	apply.Record(r.Recorder, tj, []apply.Event{{Warning: warning, Reason: st.Reason, Action: string(st.Phase), Message: st.Message}})
}

func (r *Reconciler) surroundings(ctx context.Context, tj *aifv1.TrainingJob) (Surroundings, error) {
	s := Surroundings{DatasetMounts: map[string]*aifv1.DatasetMount{}}
	var err error
	if s.Tenant, err = tenancy.Of(ctx, r.Client, tj.Namespace); err != nil {
		return s, err
	}
	lq := &kueue.LocalQueue{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: tj.Namespace, Name: tj.Spec.QueueName}, lq); {
	case err == nil:
		s.QueueExists = true
	case !apierrors.IsNotFound(err):
		return s, fmt.Errorf("reading local queue: %w", err)
	}
	if s.Classes, err = classes.Known(ctx, r.Client); err != nil {
		return s, err
	}
	for _, name := range index.DatasetsOf(tj) {
		d := &aifv1.DatasetMount{}
		switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: tj.Namespace, Name: name}, d); {
		case err == nil:
			s.DatasetMounts[name] = d
		case !apierrors.IsNotFound(err):
			return s, fmt.Errorf("reading dataset %s: %w", name, err)
		}
	}
	return s, nil
}

// pathsResolve resolves the paths of the run's datasets and checkpoint again, without following symbolic
// links, before an attempt's Job is made: a folder swapped for a link since its DatasetMount was admitted
// stops the run here. It also stops a template with fsGroup that mounts a whole filesystem, whose pods the Pod
// webhook would refuse.
func (r *Reconciler) pathsResolve(tj *aifv1.TrainingJob, dsms map[string]*aifv1.DatasetMount, v Verdict) Verdict {
	fsGroup := tj.Spec.Template.Spec.SecurityContext != nil && tj.Spec.Template.Spec.SecurityContext.FSGroup != nil
	for _, name := range index.DatasetsOf(tj) {
		if d := dsms[name]; d != nil {
			if msg := datasets.FSGroupConflict(d, r.Config); fsGroup && msg != "" {
				return refuse(aifv1.ReasonDatasetNotReady, "spec.template.spec.securityContext.fsGroup: %s", msg)
			}
			if err := datasets.CheckPath(r.Config, d); err != nil {
				reason := aifv1.ReasonDatasetNotReady
				if datasets.PathUnsafe(err) {
					reason = aifv1.ReasonDatasetRevoked
				}
				return refuse(reason, "DatasetMount %s: spec.path: %v (resolved again before each attempt, without following symbolic links)", name, err)
			}
		}
	}
	return v
}

func mounts(tj *aifv1.TrainingJob, dsms map[string]*aifv1.DatasetMount) []Mount {
	out := make([]Mount, 0, len(tj.Spec.Datasets))
	for _, d := range tj.Spec.Datasets {
		out = append(out, *mount(dsms[d.Name], d.Name, d.MountPath, true))
	}
	return out
}

func mount(d *aifv1.DatasetMount, name, path string, readOnly bool) *Mount {
	return &Mount{Name: name, ClaimName: d.Status.ClaimName, SubPath: d.Status.SubPath, MountPath: path, ReadOnly: readOnly}
}

// SetupWithManager registers the controller. Kueue's workloads reach their TrainingJob through
// the Job that owns them, LocalQueues through the jobs of their namespace that name them, and DatasetMounts
// through the jobs that mount them.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	c := mgr.GetClient()
	phases.use(c)
	err := ctrl.NewControllerManagedBy(mgr).Named("trainingjob").
		For(&aifv1.TrainingJob{}).
		Owns(&batchv1.Job{}).
		Owns(&corev1.Service{}).
		Watches(&kueue.Workload{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			for _, ref := range o.GetOwnerReferences() {
				if ref.Kind != "Job" {
					continue
				}
				job := &batchv1.Job{}
				if err := c.Get(ctx, types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name}, job); err != nil {
					return nil
				}
				return ownerRequest(job)
			}
			return nil
		})).
		Watches(&kueue.LocalQueue{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var jobs aifv1.TrainingJobList
			if err := c.List(ctx, &jobs, client.InNamespace(o.GetNamespace())); err != nil {
				return nil
			}
			var out []reconcile.Request
			for _, tj := range jobs.Items {
				if tj.Spec.QueueName == o.GetName() {
					out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: tj.Namespace, Name: tj.Name}})
				}
			}
			return out
		}), builder.WithPredicates(queueCameOrWent())).
		Watches(&aifv1.TenantQuota{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var out []reconcile.Request
			for _, ns := range o.(*aifv1.TenantQuota).Spec.Namespaces {
				var jobs aifv1.TrainingJobList
				if err := c.List(ctx, &jobs, client.InNamespace(ns)); err != nil {
					return nil
				}
				for _, tj := range jobs.Items {
					out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: tj.Namespace, Name: tj.Name}})
				}
			}
			return out
		}), builder.WithPredicates(budgetHoldChanged())).
		Watches(&aifv1.DatasetMount{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var jobs aifv1.TrainingJobList
			if err := c.List(ctx, &jobs, client.InNamespace(o.GetNamespace()), client.MatchingFields{index.TrainingJobDataset: o.GetName()}); err != nil {
				return nil
			}
			out := make([]reconcile.Request, 0, len(jobs.Items))
			for _, tj := range jobs.Items {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: tj.Namespace, Name: tj.Name}})
			}
			return out
		})).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the trainingjob controller: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &aifv1.TrainingJob{}).WithValidator(&Validator{Reader: c, Config: r.Config}).Complete(); err != nil {
		return fmt.Errorf("setting up the trainingjob webhook: %w", err)
	}
	return nil
}

func ownerRequest(job *batchv1.Job) []reconcile.Request {
	for _, ref := range job.OwnerReferences {
		if ref.Kind == "TrainingJob" && ref.Controller != nil && *ref.Controller {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: job.Namespace, Name: ref.Name}}}
		}
	}
	return nil
}

// queueCameOrWent passes the creation and deletion of LocalQueues, not their updates: a run reads only whether
// its queue exists, and Kueue updates a queue's counters whenever a workload in it changes, which would bring
// back every run of the namespace each time.
func queueCameOrWent() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return true },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
	}
}

// budgetHoldChanged passes TenantQuota updates that start or end a budget hold, not the ledger's updates.
func budgetHoldChanged() predicate.Predicate {
	held := func(o client.Object) bool {
		tq, ok := o.(*aifv1.TenantQuota)
		return ok && apimeta.IsStatusConditionTrue(tq.Status.Conditions, aifv1.ConditionBudgetExhausted)
	}
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc:  func(e event.UpdateEvent) bool { return held(e.ObjectOld) != held(e.ObjectNew) },
	}
}
