// Package tenancy answers which TenantQuota a namespace belongs to, for the controllers and webhooks that all
// need it.
package tenancy

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/index"
)

// Of returns the TenantQuota that lists the namespace, nil if none does. When several do, the oldest one owns
// it, as for the tenant's queues.
func Of(ctx context.Context, c client.Reader, namespace string) (*aifv1.TenantQuota, error) {
	var list aifv1.TenantQuotaList
	if err := c.List(ctx, &list, client.MatchingFields{index.TenantNamespace: namespace}); err != nil {
		return nil, fmt.Errorf("finding the tenant of namespace %s: %w", namespace, err)
	}
	var owner *aifv1.TenantQuota
	for i := range list.Items {
		tq := &list.Items[i]
		if tq.DeletionTimestamp == nil && (owner == nil || Older(tq, owner)) {
			owner = tq
		}
	}
	return owner, nil
}

// Older orders TenantQuotas by creation, then by name: of two that list the same namespace, the older owns it.
func Older(a, b *aifv1.TenantQuota) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}
