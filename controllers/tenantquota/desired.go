package tenantquota

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
)

// NamespaceNameLabel is set by the API server on every namespace to its name.
const NamespaceNameLabel = "kubernetes.io/metadata.name"

// Unmetered resources: training pods request CPU, memory and scratch space, and a ClusterQueue must cover
// every resource a workload requests, or Kueue refuses to admit it. The operator covers them in every GPU
// class's flavor with a quota that never binds, so GPUs are the only resource Kueue meters; kube-scheduler
// still places pods only where a node has the CPU and memory they ask for. The figures are large enough for any
// cluster and small enough that the sum over thousands of tenants fits Kueue's 64-bit accounting.
var unmetered = corev1.ResourceList{
	corev1.ResourceCPU:              resource.MustParse("1M"),
	corev1.ResourceMemory:           resource.MustParse("1Pi"),
	corev1.ResourceEphemeralStorage: resource.MustParse("1Pi"),
}

// ClusterQueueName is the name of a tenant's ClusterQueue.
func ClusterQueueName(tenant string) string { return "tenant-" + tenant }

// ApplyClusterQueue sets the fields of cq that the operator manages for tq, leaving fields that Kueue defaults
// or that the operator does not manage as they are. classes are the known GPU classes by name; namespaces are
// the tenant's namespaces that its ClusterQueue admits from; stop is the stop policy (budget or deletion);
// budgeted adds the budget AdmissionCheck (other checks a platform team added stay).
func ApplyClusterQueue(cq *kueue.ClusterQueue, tq *aifv1.TenantQuota, classes map[string]classes.Class, namespaces []string, stop kueue.StopPolicy, budgeted bool) {
	cq.Name = ClusterQueueName(tq.Name)
	cq.Labels = withManagedLabels(cq.Labels, tq.Name)
	cq.OwnerReferences = []metav1.OwnerReference{ownerRef(tq)}
	cq.Spec.CohortName = kueue.CohortReference(tq.Spec.Cohort)
	cq.Spec.ResourceGroups = resourceGroups(tq.Spec.GPUs, classes)
	cq.Spec.NamespaceSelector = namespaceSelector(namespaces)
	if cq.Spec.Preemption == nil {
		cq.Spec.Preemption = &kueue.ClusterQueuePreemption{}
	}
	cq.Spec.Preemption.WithinClusterQueue = kueue.PreemptionPolicyLowerPriority
	cq.Spec.Preemption.ReclaimWithinCohort = kueue.PreemptionPolicyAny
	cq.Spec.FairSharing = nil
	if w := tq.Spec.FairSharingWeight; w != nil {
		cq.Spec.FairSharing = &kueue.FairSharing{Weight: ptr.To(w.DeepCopy())}
	}
	cq.Spec.StopPolicy = ptr.To(stop)
	cq.Spec.AdmissionChecksStrategy = withBudgetCheck(cq.Spec.AdmissionChecksStrategy, budgeted)
}

// withBudgetCheck adds or removes the budget check among a ClusterQueue's admission checks; it runs for every
// flavor.
func withBudgetCheck(s *kueue.AdmissionChecksStrategy, budgeted bool) *kueue.AdmissionChecksStrategy {
	var rules []kueue.AdmissionCheckStrategyRule
	if s != nil {
		for _, rule := range s.AdmissionChecks {
			if rule.Name != aifv1.BudgetCheckName {
				rules = append(rules, rule)
			}
		}
	}
	if budgeted {
		rules = append(rules, kueue.AdmissionCheckStrategyRule{Name: aifv1.BudgetCheckName})
	}
	if len(rules) == 0 {
		return nil
	}
	return &kueue.AdmissionChecksStrategy{AdmissionChecks: rules}
}

// resourceGroups puts every GPU resource of the tenant's known classes and the unmetered resources in one
// group, so that Kueue assigns all of a pod's resources from the same flavor (one flavor per class). A class
// offers its own resource at the tenant's quota and the other classes' resources at zero.
func resourceGroups(gpus []aifv1.GPUQuota, classes map[string]classes.Class) []kueue.ResourceGroup {
	var known []aifv1.GPUQuota
	gpuResources := map[corev1.ResourceName]bool{}
	for _, g := range gpus {
		if c, ok := classes[g.GPUClass]; ok {
			known = append(known, g)
			gpuResources[c.Resource] = true
		}
	}
	if len(known) == 0 {
		return nil
	}
	covered := make([]corev1.ResourceName, 0, len(gpuResources)+len(unmetered))
	for r := range gpuResources {
		covered = append(covered, r)
	}
	for r := range unmetered {
		covered = append(covered, r)
	}
	sort.Slice(covered, func(i, j int) bool { return covered[i] < covered[j] })

	flavors := make([]kueue.FlavorQuotas, 0, len(known))
	for _, g := range known {
		class := classes[g.GPUClass]
		fq := kueue.FlavorQuotas{Name: kueue.ResourceFlavorReference(g.GPUClass)}
		for _, r := range covered {
			q := kueue.ResourceQuota{Name: r, NominalQuota: resource.MustParse("0")}
			switch {
			case r == class.Resource:
				q.NominalQuota = *resource.NewQuantity(int64(g.Nominal), resource.DecimalSI)
				q.BorrowingLimit = quantity(g.BorrowingLimit)
				q.LendingLimit = quantity(g.LendingLimit)
			case gpuResources[r]:
			default:
				q.NominalQuota = unmetered[r].DeepCopy()
			}
			fq.Resources = append(fq.Resources, q)
		}
		flavors = append(flavors, fq)
	}
	return []kueue.ResourceGroup{{CoveredResources: covered, Flavors: flavors}}
}

func quantity(v *int32) *resource.Quantity {
	if v == nil {
		return nil
	}
	return resource.NewQuantity(int64(*v), resource.DecimalSI)
}

// namespaceSelector admits workloads from the given namespaces only; with none, from no namespace.
func namespaceSelector(namespaces []string) *metav1.LabelSelector {
	if len(namespaces) == 0 {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: NamespaceNameLabel, Operator: metav1.LabelSelectorOpDoesNotExist,
		}}}
	}
	values := append([]string(nil), namespaces...)
	sort.Strings(values)
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: NamespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: values,
	}}}
}

// ApplyLocalQueue sets the fields of lq that the operator manages: its name, namespace and ClusterQueue.
func ApplyLocalQueue(lq *kueue.LocalQueue, tq *aifv1.TenantQuota, namespace, name string) {
	lq.Name, lq.Namespace = name, namespace
	lq.Labels = withManagedLabels(lq.Labels, tq.Name)
	lq.OwnerReferences = []metav1.OwnerReference{ownerRef(tq)}
	lq.Spec.ClusterQueue = kueue.ClusterQueueReference(ClusterQueueName(tq.Name))
}

func withManagedLabels(l map[string]string, tenant string) map[string]string {
	if l == nil {
		l = map[string]string{}
	}
	l[aifv1.ManagedByLabel] = aifv1.ManagedByValue
	l[aifv1.TenantLabel] = tenant
	return l
}

func ownerRef(tq *aifv1.TenantQuota) metav1.OwnerReference {
	return *metav1.NewControllerRef(tq, aifv1.GroupVersion.WithKind("TenantQuota"))
}
