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
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount"
	"github.com/aifactory-eu/aifactory-operator/controllers/gpuclass"
)

// WorkloadOwnerIndex indexes Kueue workloads by the name of the Job that owns them.
const WorkloadOwnerIndex = "metadata.ownerReferences.job"

// Reconciler runs a TrainingJob as a suspended Indexed Job that Kueue admits, and mirrors its state.
type Reconciler struct {
	Client client.Client
	Config *configv1.Configuration
}

// +kubebuilder:rbac:groups=aifactory.eu,resources=trainingjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=aifactory.eu,resources=trainingjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=aifactory.eu,resources=datasetmounts,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=workloads;localqueues;resourceflavors,verbs=get;list;watch

// Reconcile checks a run's references, hands it to Kueue once they check out, and mirrors its state.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	tj := &aifv1.TrainingJob{}
	if err := r.Client.Get(ctx, req.NamespacedName, tj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if tj.DeletionTimestamp != nil || tj.Status.Phase == aifv1.PhaseSucceeded || tj.Status.Phase == aifv1.PhaseFailed {
		return ctrl.Result{}, nil // a finished run's status is its record; owned children go with it
	}
	s, err := r.surroundings(ctx, tj)
	if err != nil {
		return ctrl.Result{}, err
	}
	obs := Observed{Verdict: Accept(tj, s)}
	if obs.Verdict.Accepted {
		in := Input{Attempt: tj.Status.Restarts, Datasets: mounts(tj, s.DatasetMounts)}
		if c, ok := s.Classes[tj.Spec.GPUClass]; ok {
			in.Class = &c
		}
		if ck := tj.Spec.Checkpoint; ck != nil {
			in.Checkpoint = mount(s.DatasetMounts[ck.DatasetMount], ck.DatasetMount, ck.MountPath, false)
		}
		if obs.Job, obs.Workload, err = r.ensureAttempt(ctx, tj, in); err != nil {
			return ctrl.Result{}, err
		}
	}
	st := ComputeStatus(tj, obs)
	if equality.Semantic.DeepEqual(tj.Status, st) {
		return ctrl.Result{}, nil
	}
	tj.Status = st
	if err := r.Client.Status().Update(ctx, tj); err != nil {
		return ctrl.Result{}, fmt.Errorf("writing status: %w", err)
	}
	return ctrl.Result{}, nil
}

func (r *Reconciler) surroundings(ctx context.Context, tj *aifv1.TrainingJob) (Surroundings, error) {
	s := Surroundings{DatasetMounts: map[string]*aifv1.DatasetMount{}}
	var err error
	if s.Tenant, err = datasetmount.TenantOf(ctx, r.Client, tj.Namespace); err != nil {
		return s, err
	}
	lq := &kueue.LocalQueue{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: tj.Namespace, Name: tj.Spec.QueueName}, lq); {
	case err == nil:
		s.QueueExists = true
	case !apierrors.IsNotFound(err):
		return s, fmt.Errorf("reading local queue: %w", err)
	}
	if s.Classes, err = gpuclass.Known(ctx, r.Client); err != nil {
		return s, err
	}
	for _, name := range datasetmount.DatasetsOf(tj) {
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

// ensureAttempt creates the Service and the attempt's Job if they are missing, and returns the Job with its
// Kueue workload (nil until Kueue created it).
func (r *Reconciler) ensureAttempt(ctx context.Context, tj *aifv1.TrainingJob, in Input) (*batchv1.Job, *kueue.Workload, error) {
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: tj.Namespace, Name: ServiceName(tj)}, &corev1.Service{}); {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, Service(tj)); client.IgnoreAlreadyExists(err) != nil {
			return nil, nil, fmt.Errorf("creating service: %w", err)
		}
	case err != nil:
		return nil, nil, fmt.Errorf("reading service: %w", err)
	}
	job := &batchv1.Job{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: tj.Namespace, Name: JobName(tj, in.Attempt)}, job); {
	case apierrors.IsNotFound(err):
		job = Job(tj, in)
		if err := r.Client.Create(ctx, job); client.IgnoreAlreadyExists(err) != nil {
			return nil, nil, fmt.Errorf("creating job: %w", err)
		}
		return job, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading job: %w", err)
	}
	var wls kueue.WorkloadList
	if err := r.Client.List(ctx, &wls, client.InNamespace(tj.Namespace), client.MatchingFields{WorkloadOwnerIndex: job.Name}); err != nil {
		return nil, nil, fmt.Errorf("listing workloads: %w", err)
	}
	for i := range wls.Items {
		for _, o := range wls.Items[i].OwnerReferences {
			if o.UID == job.UID {
				return job, &wls.Items[i], nil
			}
		}
	}
	return job, nil, nil
}

// SetupWithManager registers the index and the controller. Kueue's workloads reach their TrainingJob through
// the Job that owns them, LocalQueues through the jobs of their namespace that name them, and DatasetMounts
// through the jobs that mount them.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &kueue.Workload{}, WorkloadOwnerIndex, func(o client.Object) []string {
		var out []string
		for _, ref := range o.GetOwnerReferences() {
			if ref.Kind == "Job" && ref.APIVersion == batchv1.SchemeGroupVersion.String() {
				out = append(out, ref.Name)
			}
		}
		return out
	}); err != nil {
		return fmt.Errorf("indexing workloads by job: %w", err)
	}
	c := mgr.GetClient()
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
		})).
		Watches(&aifv1.DatasetMount{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var jobs aifv1.TrainingJobList
			if err := c.List(ctx, &jobs, client.InNamespace(o.GetNamespace()), client.MatchingFields{datasetmount.TrainingJobDatasetIndex: o.GetName()}); err != nil {
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
