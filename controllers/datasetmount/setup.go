package datasetmount

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/index"
)

// SetupWithManager registers the controller and the admission webhook.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).Named("datasetmount").
		For(&aifv1.DatasetMount{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		Owns(&batchv1.Job{}).
		Watches(&corev1.PersistentVolume{}, handler.EnqueueRequestsFromMapFunc(volumeOwner)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.verificationPodOwner)).
		Watches(&aifv1.TrainingJob{}, handler.EnqueueRequestsFromMapFunc(datasetsOfJob)).
		Watches(&aifv1.TenantQuota{}, handler.EnqueueRequestsFromMapFunc(r.datasetsOfTenant), builder.WithPredicates(tenantSpecChanged())).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.datasetsIn), builder.WithPredicates(tenantLabelChanged())).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the datasetmount controller: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &aifv1.DatasetMount{}).WithValidator(&Validator{Reader: mgr.GetClient(), Config: r.Config}).Complete(); err != nil {
		return fmt.Errorf("setting up the datasetmount webhook: %w", err)
	}
	mgr.GetWebhookServer().Register(PodPath, &webhook.Admission{Handler: &PodValidator{
		Reader: mgr.GetClient(), Config: r.Config, Decoder: admission.NewDecoder(mgr.GetScheme()),
	}})
	return nil
}

func volumeOwner(_ context.Context, o client.Object) []reconcile.Request {
	ns, name := o.GetAnnotations()[NamespaceAnnotation], o.GetAnnotations()[NameAnnotation]
	if ns == "" || name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
}

// verificationPodOwner maps a verification pod to its DatasetMount through the pod's Job.
func (r *Reconciler) verificationPodOwner(ctx context.Context, o client.Object) []reconcile.Request {
	jobName := o.GetLabels()[batchv1.JobNameLabel]
	if jobName == "" {
		return nil
	}
	job := &batchv1.Job{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: o.GetNamespace(), Name: jobName}, job); err != nil {
		return nil
	}
	if ref := metav1.GetControllerOf(job); ref != nil && ref.Kind == "DatasetMount" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: job.Namespace, Name: ref.Name}}}
	}
	return nil
}

func datasetsOfJob(_ context.Context, o client.Object) []reconcile.Request {
	tj, ok := o.(*aifv1.TrainingJob)
	if !ok {
		return nil
	}
	var out []reconcile.Request
	for _, name := range index.DatasetsOf(tj) {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: tj.Namespace, Name: name}})
	}
	return out
}

// datasetsOfTenant re-checks the DatasetMounts of a tenant's namespaces when its roots or classes change, and
// those it granted, so that a namespace dropped from the tenant loses them.
func (r *Reconciler) datasetsOfTenant(ctx context.Context, o client.Object) []reconcile.Request {
	tq, ok := o.(*aifv1.TenantQuota)
	if !ok {
		return nil
	}
	seen := map[types.NamespacedName]bool{}
	var out []reconcile.Request
	add := func(list *aifv1.DatasetMountList) {
		for _, d := range list.Items {
			if key := client.ObjectKeyFromObject(&d); !seen[key] {
				seen[key] = true
				out = append(out, reconcile.Request{NamespacedName: key})
			}
		}
	}
	for _, ns := range tq.Spec.Namespaces {
		var list aifv1.DatasetMountList
		if err := r.Client.List(ctx, &list, client.InNamespace(ns)); err == nil {
			add(&list)
		}
	}
	var granted aifv1.DatasetMountList
	if err := r.Client.List(ctx, &granted, client.MatchingFields{index.DatasetTenant: tq.Name}); err == nil {
		add(&granted)
	}
	return out
}

// datasetsIn re-checks the DatasetMounts of a namespace whose tenant label changed: no claim is made before
// the label is there.
func (r *Reconciler) datasetsIn(ctx context.Context, o client.Object) []reconcile.Request {
	var list aifv1.DatasetMountList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetName())); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, d := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&d)})
	}
	return out
}

// tenantSpecChanged passes TenantQuota updates that can change what its DatasetMounts may do (its spec, or the
// start of its deletion), not the status writes that follow the tenant's use.
func tenantSpecChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
				(e.ObjectOld.GetDeletionTimestamp() == nil) != (e.ObjectNew.GetDeletionTimestamp() == nil)
		},
	}
}

func tenantLabelChanged() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return e.Object.GetLabels()[aifv1.TenantLabel] != "" },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetLabels()[aifv1.TenantLabel] != e.ObjectNew.GetLabels()[aifv1.TenantLabel]
		},
	}
}
