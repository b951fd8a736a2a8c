package tenantquota

import (
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/controllers/podpolicy"
)

// planQueues plans the writes that keep the tenant's Kueue objects in line, in this order: the budget
// AdmissionCheck (created, then marked Active on the next pass) for a budgeted tenant, the ClusterQueue, then,
// for each listed namespace that exists, its labels (the tenant's name for Kueue's job integration, the Pod
// Security level) before its LocalQueue. A tenant on its way out gets no new queue and no new namespace writes.
// It fails only when the budget AdmissionCheck exists with another controller's name.
func planQueues(tq *aifv1.TenantQuota, obs *Observed, cfg *configv1.Configuration, stop kueue.StopPolicy) (apply.Plan, error) {
	var plan apply.Plan
	if tq.Spec.Budget != nil && tq.DeletionTimestamp == nil {
		w, err := budgetCheckWrite(obs.BudgetCheck)
		if err != nil {
			return nil, err
		}
		plan = append(plan, w...)
	}
	namespaces := obs.Namespaces(tq)
	switch cq := obs.ClusterQueue; {
	case cq == nil && tq.DeletionTimestamp != nil:
		// a late pass of a tenant on its way out still sees it: nothing new is made for it
	case cq == nil:
		cq = &kueue.ClusterQueue{}
		ApplyClusterQueue(cq, tq, obs.Classes, namespaces, stop, tq.Spec.Budget != nil)
		plan = append(plan, apply.Write{Verb: apply.Create, Object: cq, Why: "the tenant's ClusterQueue"})
	default:
		want := cq.DeepCopy()
		ApplyClusterQueue(want, tq, obs.Classes, namespaces, stop, tq.Spec.Budget != nil)
		plan = append(plan, apply.Write{Verb: apply.Update, Object: want, Current: cq, Why: "the tenant's quota, cohort or stop policy"})
	}
	if tq.DeletionTimestamp != nil {
		return plan, nil
	}
	labels := podpolicy.NamespaceLabels(tq.Name, podpolicy.For(cfg, tq).Level)
	for _, ns := range namespaces {
		if !obs.Existing[ns] {
			continue
		}
		if w, ok := namespaceLabels(ns, obs.NamespaceLabels[ns], labels); ok {
			plan = append(plan, w)
		}
		lq := obs.LocalQueues[ns]
		if lq == nil {
			lq = &kueue.LocalQueue{}
			ApplyLocalQueue(lq, tq, ns, cfg.DefaultQueueName)
			plan = append(plan, apply.Write{Verb: apply.Create, Object: lq, Why: "the tenant's queue in namespace " + ns})
			continue
		}
		want := lq.DeepCopy()
		ApplyLocalQueue(want, tq, ns, cfg.DefaultQueueName)
		plan = append(plan, apply.Write{Verb: apply.Update, Object: want, Current: lq, Why: "the tenant's queue in namespace " + ns})
	}
	return plan, nil
}

// budgetCheckWrite creates the budget AdmissionCheck, or marks it Active once it exists: Kueue holds every
// ClusterQueue that names an inactive or missing check, so a tenant's work is never admitted past it.
func budgetCheckWrite(ac *kueue.AdmissionCheck) (apply.Plan, error) {
	if ac == nil {
		return apply.Plan{{Verb: apply.Create, Object: BudgetCheck(), IfMissing: true, Why: "the budget check of budgeted tenants"}}, nil
	}
	if ac.Spec.ControllerName != aifv1.BudgetCheckController {
		return nil, fmt.Errorf("admission check %s exists with controllerName %q; the operator needs %q (delete it to let the operator make it)",
			ac.Name, ac.Spec.ControllerName, aifv1.BudgetCheckController)
	}
	if apimeta.IsStatusConditionTrue(ac.Status.Conditions, kueue.AdmissionCheckActive) {
		return nil, nil
	}
	want := ac.DeepCopy()
	apimeta.SetStatusCondition(&want.Status.Conditions, metav1.Condition{
		Type: kueue.AdmissionCheckActive, Status: metav1.ConditionTrue, Reason: "Active", ObservedGeneration: ac.Generation,
		Message: "the operator reserves each workload's GPU-hours against its tenant's budget before admission",
	})
	return apply.Plan{{Verb: apply.Update, Status: true, Object: want, Current: ac, Why: "activate the budget check"}}, nil
}

// namespaceLabels is the patch that gives a tenant namespace the labels it lacks or has wrong; other labels
// stay. ok is false when nothing is missing.
func namespaceLabels(ns string, have, want map[string]string) (apply.Write, bool) {
	changed := false
	for k, v := range want {
		changed = changed || have[k] != v
	}
	if !changed {
		return apply.Write{}, false
	}
	current := &metav1.PartialObjectMetadata{}
	current.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	current.SetName(ns)
	current.SetLabels(maps.Clone(have))
	desired := current.DeepCopy()
	labels := maps.Clone(have)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, want)
	desired.SetLabels(labels)
	return apply.Write{Verb: apply.Patch, Object: desired, Current: current, Why: "tenant and Pod Security labels"}, true
}
