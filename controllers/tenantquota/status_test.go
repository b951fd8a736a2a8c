package tenantquota

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

func activeCQ(reserving int32) *kueue.ClusterQueue {
	return &kueue.ClusterQueue{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-medai"},
		Status: kueue.ClusterQueueStatus{
			ReservingWorkloads: reserving, AdmittedWorkloads: reserving, PendingWorkloads: 2,
			Conditions: []metav1.Condition{{Type: kueue.ClusterQueueActive, Status: metav1.ConditionTrue, Reason: "Ready"}},
			FlavorsUsage: []kueue.FlavorUsage{{Name: builders.GPUClassH100, Resources: []kueue.ResourceUsage{
				{Name: "nvidia.com/gpu", Total: resource.MustParse("24"), Borrowed: resource.MustParse("8")},
				{Name: "cpu", Total: resource.MustParse("96")},
			}}},
		},
	}
}

func TestComputeStatus(t *testing.T) {
	p := accounting.PeriodAt(aifv1.PeriodMonth, time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC))
	tq := builders.TenantQuota("medai").Namespaces("medai-dev", "medai-prod").GPUs(builders.GPUClassH100, 16).Budget(2, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj()
	tq.Generation = 3
	deleting := tq.DeepCopy()
	deleting.DeletionTimestamp = ptr.To(metav1.Now())
	unknownClass := builders.TenantQuota("medai").Namespaces("medai-dev", "medai-prod").GPUs("b200", 8).Obj()
	obs := func(mut func(o *Observed)) *Observed {
		o := &Observed{
			Existing:     map[string]bool{"medai-dev": true, "medai-prod": true},
			Classes:      testClasses,
			ClusterQueue: activeCQ(1),
			LocalQueues:  map[string]*kueue.LocalQueue{"medai-dev": {ObjectMeta: metav1.ObjectMeta{Name: "default"}}, "medai-prod": {ObjectMeta: metav1.ObjectMeta{Name: "default"}}},
		}
		if mut != nil {
			mut(o)
		}
		return o
	}
	cases := []struct {
		name       string
		tq         *aifv1.TenantQuota
		obs        *Observed
		used       int64
		wantReady  string
		wantBudget string
	}{
		{"active and within budget", tq, obs(nil), 3600, aifv1.ReasonClusterQueueActive, aifv1.ReasonWithinBudget},
		{"spent", tq, obs(nil), 7200, aifv1.ReasonClusterQueueActive, aifv1.ReasonBudgetExhausted},
		{"terminating wins", deleting, obs(func(o *Observed) { o.Existing["medai-prod"] = false }), 0, aifv1.ReasonTerminating, aifv1.ReasonWithinBudget},
		{"unknown class", unknownClass, obs(nil), 0, aifv1.ReasonGPUClassUnknown, aifv1.ReasonNoBudget},
		{"conflict before missing", tq, obs(func(o *Observed) {
			o.Conflicts = map[string]string{"medai-prod": "old"}
			o.Existing["medai-dev"] = false
		}), 0, aifv1.ReasonNamespaceConflict, aifv1.ReasonWithinBudget},
		{"missing namespace", tq, obs(func(o *Observed) { o.Existing["medai-prod"] = false }), 0, aifv1.ReasonNamespaceMissing, aifv1.ReasonWithinBudget},
		{"removed namespace still in use", tq, obs(func(o *Observed) {
			o.LocalQueues["old"] = &kueue.LocalQueue{Status: kueue.LocalQueueStatus{PendingWorkloads: 1}}
		}), 0, aifv1.ReasonNamespaceInUse, aifv1.ReasonWithinBudget},
		{"no cluster queue yet", tq, obs(func(o *Observed) { o.ClusterQueue = nil }), 0, aifv1.ReasonReconciling, aifv1.ReasonWithinBudget},
		{"inactive in Kueue", tq, obs(func(o *Observed) { o.ClusterQueue.Status.Conditions[0].Status = metav1.ConditionFalse }), 0, aifv1.ReasonClusterQueueInactive, aifv1.ReasonWithinBudget},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var verdict *accounting.Budget
			if tc.tq.Spec.Budget != nil {
				verdict = ptr.To(accounting.Judge(tc.tq.Spec.Budget.GPUHours, tc.used, 0))
			}
			st := ComputeStatus(tc.tq, tc.obs, accounting.Account{UsedGPUSeconds: tc.used, State: accounting.LedgerState{PeriodStart: p.Start}}, p, verdict, nil)
			ready := condition(st.Conditions, aifv1.ConditionReady)
			budget := condition(st.Conditions, aifv1.ConditionBudgetExhausted)
			if ready.Reason != tc.wantReady || budget.Reason != tc.wantBudget {
				t.Fatalf("Ready %s (%s), BudgetExhausted %s; want %s, %s", ready.Reason, ready.Message, budget.Reason, tc.wantReady, tc.wantBudget)
			}
			if ready.ObservedGeneration != tc.tq.Generation || budget.ObservedGeneration != tc.tq.Generation || st.ObservedGeneration != tc.tq.Generation {
				t.Fatal("observedGeneration missing")
			}
		})
	}
	st := ComputeStatus(tq, obs(nil), accounting.Account{UsedGPUSeconds: 5400}, p, ptr.To(accounting.Judge(2, 5400, 0)), nil)
	if st.NominalGPUs != 16 || st.AdmittedGPUs != 24 || st.GPUs[0].Borrowed != 8 || st.Workloads.Pending != 2 || st.Workloads.Admitted != 1 {
		t.Fatalf("figures from Kueue: %+v", st)
	}
	if st.Budget.UsedGPUHours != "1.50" || st.Budget.RemainingGPUHours != "0.50" || st.Budget.BudgetGPUHours != "2" || !st.Budget.PeriodEnd.Time.Equal(p.End) {
		t.Fatalf("budget: %+v", st.Budget)
	}
	// A second pass over the same world keeps the conditions' transition times.
	tq2 := tq.DeepCopy()
	tq2.Status = st
	again := ComputeStatus(tq2, obs(nil), accounting.Account{UsedGPUSeconds: 5400}, p, ptr.To(accounting.Judge(2, 5400, 0)), nil)
	before, after := condition(st.Conditions, aifv1.ConditionReady).LastTransitionTime, condition(again.Conditions, aifv1.ConditionReady).LastTransitionTime
	if !after.Equal(&before) {
		t.Fatal("transition time changed without a transition")
	}
}

func condition(conds []metav1.Condition, t string) metav1.Condition {
	for _, c := range conds {
		if c.Type == t {
			return c
		}
	}
	return metav1.Condition{}
}
