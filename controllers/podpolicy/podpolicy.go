// Package podpolicy is the pod policy that tenants' TrainingJobs keep to: the Pod Security level of a tenant's
// namespaces and the exceptions (capabilities, service accounts, storage classes) that the platform team grants
// in the operator configuration and per tenant in its TenantQuota.
package podpolicy

import (
	"slices"
	"sort"
	"strings"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// Pod Security admission's namespace labels.
const (
	EnforceLabel        = "pod-security.kubernetes.io/enforce"
	EnforceVersionLabel = "pod-security.kubernetes.io/enforce-version"
	WarnLabel           = "pod-security.kubernetes.io/warn"
	WarnVersionLabel    = "pod-security.kubernetes.io/warn-version"
	AuditLabel          = "pod-security.kubernetes.io/audit"
	AuditVersionLabel   = "pod-security.kubernetes.io/audit-version"
)

// NamespaceLabelKeys are the keys of NamespaceLabels, which the operator owns on tenant namespaces.
var NamespaceLabelKeys = []string{aifv1.TenantLabel, EnforceLabel, EnforceVersionLabel, WarnLabel, WarnVersionLabel, AuditLabel, AuditVersionLabel}

// NamespaceLabels are the labels a tenant namespace carries: the tenant's name, which selects the namespace for
// Kueue's management of Jobs and Pods without a queue, and Pod Security admission at the tenant's level.
func NamespaceLabels(tenant string, level aifv1.PodSecurityLevel) map[string]string {
	l := string(level)
	return map[string]string{
		aifv1.TenantLabel: tenant,
		EnforceLabel:      l, EnforceVersionLabel: "latest",
		WarnLabel: l, WarnVersionLabel: "latest",
		AuditLabel: l, AuditVersionLabel: "latest",
	}
}

// Policy is the pod policy in force for one tenant's TrainingJobs: the operator configuration's, with the
// tenant's own exceptions added.
type Policy struct {
	// Level is the Pod Security level that the tenant's namespaces enforce and its runs' pods must pass.
	Level aifv1.PodSecurityLevel
	// Capabilities are the capabilities a container may add beyond those of the level.
	Capabilities []string
	// ServiceAccounts are the service accounts a run may use besides "default".
	ServiceAccounts []string
	// StorageClasses are the storage classes of generic ephemeral volumes.
	StorageClasses []string
	// RuntimeClasses are the runtime classes a run may name.
	RuntimeClasses []string
}

// For is the pod policy of a tenant: the configuration's, plus the TenantQuota's exceptions. The tenant's
// level replaces the configuration's. tenant may be nil (a namespace of no tenant).
func For(cfg *configv1.Configuration, tenant *aifv1.TenantQuota) Policy {
	pp := cfg.PodPolicy
	p := Policy{
		Level:           aifv1.PodSecurityLevel(pp.PodSecurityLevel),
		Capabilities:    slices.Clone(pp.AllowedCapabilities),
		ServiceAccounts: slices.Clone(pp.ServiceAccounts),
		StorageClasses:  slices.Clone(pp.StorageClasses),
		RuntimeClasses:  slices.Clone(pp.RuntimeClasses),
	}
	if p.Level == "" {
		p.Level = aifv1.PodSecurityRestricted
	}
	if tenant != nil && tenant.Spec.PodPolicy != nil {
		tp := tenant.Spec.PodPolicy
		if tp.PodSecurityLevel != "" {
			p.Level = tp.PodSecurityLevel
		}
		p.Capabilities = append(p.Capabilities, tp.AllowedCapabilities...)
		p.ServiceAccounts = append(p.ServiceAccounts, tp.ServiceAccounts...)
		p.StorageClasses = append(p.StorageClasses, tp.StorageClasses...)
		p.RuntimeClasses = append(p.RuntimeClasses, tp.RuntimeClasses...)
	}
	return p
}

// MayAdd reports whether a container may add capability c under the policy.
func (p Policy) MayAdd(c string) bool {
	c = strings.TrimPrefix(c, "CAP_")
	if slices.Contains(p.Capabilities, c) || c == "NET_BIND_SERVICE" {
		return true
	}
	return p.Level != aifv1.PodSecurityRestricted && slices.Contains(configv1.BaselineCapabilities, c)
}

// Addable lists the capabilities a container may add, for messages.
func (p Policy) Addable() string {
	var out []string
	for _, c := range append(slices.Clone(configv1.BaselineCapabilities), p.Capabilities...) {
		if p.MayAdd(c) && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
