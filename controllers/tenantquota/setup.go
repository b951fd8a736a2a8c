package tenantquota

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/index"
	"github.com/aifactory-eu/aifactory-operator/controllers/podpolicy"
)

// SetupWithManager registers the controller with its watches: the tenant's own Kueue objects,
// its workloads (found through their LocalQueue), the namespaces it lists (metadata only) and the GPU classes
// (managed ResourceFlavors) it names.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	c := mgr.GetClient()
	err := ctrl.NewControllerManagedBy(mgr).Named("tenantquota").
		For(&aifv1.TenantQuota{}).
		Owns(&kueue.ClusterQueue{}).
		Owns(&kueue.LocalQueue{}).
		Watches(&kueue.Workload{}, handler.EnqueueRequestsFromMapFunc(workloadTenant(c))).
		Watches(&kueue.AdmissionCheck{}, handler.EnqueueRequestsFromMapFunc(budgetedTenants(c))).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(tenantsBy(c, index.TenantNamespace, func(o client.Object) string { return o.GetName() })),
			builder.OnlyMetadata, builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				return namespaceLifecycleChanged(e) || tenantLabelsChanged(e)
			}})).
		Watches(&kueue.ResourceFlavor{}, handler.EnqueueRequestsFromMapFunc(tenantsBy(c, index.TenantGPUClass, func(o client.Object) string { return o.GetName() }))).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the tenantquota controller: %w", err)
	}
	return nil
}

// workloadTenant maps a workload to the tenants that count it: the one whose namespaces hold it, and the one
// whose LocalQueue it names (which differ while a namespace moves out of a tenant).
func workloadTenant(c client.Client) handler.MapFunc {
	byNamespace := tenantsBy(c, index.TenantNamespace, func(o client.Object) string { return o.GetNamespace() })
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		wl, ok := o.(*kueue.Workload)
		if !ok {
			return nil
		}
		out := byNamespace(ctx, o)
		if wl.Spec.QueueName == "" {
			return out
		}
		lq := &kueue.LocalQueue{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: wl.Namespace, Name: string(wl.Spec.QueueName)}, lq); err != nil {
			return out
		}
		if t := lq.Labels[aifv1.TenantLabel]; t != "" {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: t}})
		}
		return out
	}
}

// budgetedTenants maps the budget AdmissionCheck to the tenants with a budget, whose ClusterQueues name it.
func budgetedTenants(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		if o.GetName() != aifv1.BudgetCheckName {
			return nil
		}
		var list aifv1.TenantQuotaList
		if err := c.List(ctx, &list); err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, tq := range list.Items {
			if tq.Spec.Budget != nil {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: tq.Name}})
			}
		}
		return out
	}
}

// tenantsBy maps an object to the TenantQuotas whose index field holds key(object).
func tenantsBy(c client.Client, index string, key func(client.Object) string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list aifv1.TenantQuotaList
		if err := c.List(ctx, &list, client.MatchingFields{index: key(o)}); err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for _, tq := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: tq.Name}})
		}
		return out
	}
}

// tenantLabelsChanged passes namespace updates that change a label the operator sets on tenant namespaces, so
// that a label someone removed or changed is set again.
func tenantLabelsChanged(e event.UpdateEvent) bool {
	for _, k := range podpolicy.NamespaceLabelKeys {
		if e.ObjectOld.GetLabels()[k] != e.ObjectNew.GetLabels()[k] {
			return true
		}
	}
	return false
}

// namespaceLifecycleChanged passes namespace updates that start their deletion.
func namespaceLifecycleChanged(e event.UpdateEvent) bool {
	return (e.ObjectOld.GetDeletionTimestamp() == nil) != (e.ObjectNew.GetDeletionTimestamp() == nil)
}
