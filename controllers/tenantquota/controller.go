// Package tenantquota holds the TenantQuota controller.
package tenantquota

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// Reconciler keeps a tenant's Kueue ClusterQueue, LocalQueues and budget ledger in line with its TenantQuota.
type Reconciler struct {
	Client client.Client
	Config *configv1.Configuration
}

// +kubebuilder:rbac:groups=aifactory.eu,resources=tenantquotas,verbs=get;list;watch
// +kubebuilder:rbac:groups=aifactory.eu,resources=tenantquotas/status,verbs=get;update;patch

// Reconcile brings the cluster in line with one TenantQuota.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &aifv1.TenantQuota{}
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := ctrl.NewControllerManagedBy(mgr).For(&aifv1.TenantQuota{}).Named("tenantquota").Complete(r); err != nil {
		return fmt.Errorf("setting up the TenantQuota controller: %w", err)
	}
	return nil
}
