package tenantquota

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

var testClasses = map[string]classes.Class{
	builders.GPUClassH100: {Name: builders.GPUClassH100, Resource: "nvidia.com/gpu"},
	builders.GPUClassMIG:  {Name: builders.GPUClassMIG, Resource: builders.MIGResource},
}

func q(s string) resource.Quantity { return resource.MustParse(s) }

func TestApplyClusterQueue(t *testing.T) {
	unmeteredQuotas := []kueue.ResourceQuota{
		{Name: corev1.ResourceCPU, NominalQuota: q("1M")},
		{Name: corev1.ResourceEphemeralStorage, NominalQuota: q("1Pi")},
		{Name: corev1.ResourceMemory, NominalQuota: q("1Pi")},
	}
	cases := []struct {
		name       string
		tq         *aifv1.TenantQuota
		namespaces []string
		stop       kueue.StopPolicy
		want       kueue.ClusterQueueSpec
	}{{
		name:       "one class, no cohort",
		tq:         builders.TenantQuota("medai").GPUs(builders.GPUClassH100, 16).Obj(),
		namespaces: []string{"medai-prod", "medai-dev"},
		stop:       kueue.None,
		want: kueue.ClusterQueueSpec{
			ResourceGroups: []kueue.ResourceGroup{{
				CoveredResources: []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceEphemeralStorage, corev1.ResourceMemory, "nvidia.com/gpu"},
				Flavors: []kueue.FlavorQuotas{{Name: builders.GPUClassH100, Resources: append(append([]kueue.ResourceQuota{}, unmeteredQuotas...),
					kueue.ResourceQuota{Name: "nvidia.com/gpu", NominalQuota: q("16")})}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: NamespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"medai-dev", "medai-prod"}}}},
			Preemption: &kueue.ClusterQueuePreemption{WithinClusterQueue: kueue.PreemptionPolicyLowerPriority, ReclaimWithinCohort: kueue.PreemptionPolicyAny},
			StopPolicy: ptr.To(kueue.None),
		},
	}, {
		name: "two classes in a cohort with limits, weight and a held budget",
		tq: builders.TenantQuota("medai").Cohort("eu").GPUs(builders.GPUClassH100, 16).Limits(builders.GPUClassH100, ptr.To[int32](16), ptr.To[int32](8)).
			GPUs(builders.GPUClassMIG, 14).FairSharingWeight("2").Obj(),
		namespaces: []string{"medai"},
		stop:       kueue.Hold,
		want: kueue.ClusterQueueSpec{
			CohortName: "eu",
			ResourceGroups: []kueue.ResourceGroup{{
				CoveredResources: []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceEphemeralStorage, corev1.ResourceMemory, "nvidia.com/gpu", builders.MIGResource},
				Flavors: []kueue.FlavorQuotas{
					{Name: builders.GPUClassH100, Resources: append(append([]kueue.ResourceQuota{}, unmeteredQuotas...),
						kueue.ResourceQuota{Name: "nvidia.com/gpu", NominalQuota: q("16"), BorrowingLimit: ptr.To(q("16")), LendingLimit: ptr.To(q("8"))},
						kueue.ResourceQuota{Name: builders.MIGResource, NominalQuota: q("0")})},
					{Name: builders.GPUClassMIG, Resources: append(append([]kueue.ResourceQuota{}, unmeteredQuotas...),
						kueue.ResourceQuota{Name: "nvidia.com/gpu", NominalQuota: q("0")},
						kueue.ResourceQuota{Name: builders.MIGResource, NominalQuota: q("14")})},
				},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: NamespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"medai"}}}},
			Preemption:  &kueue.ClusterQueuePreemption{WithinClusterQueue: kueue.PreemptionPolicyLowerPriority, ReclaimWithinCohort: kueue.PreemptionPolicyAny},
			FairSharing: &kueue.FairSharing{Weight: ptr.To(q("2"))},
			StopPolicy:  ptr.To(kueue.Hold),
		},
	}, {
		name:       "unknown classes are left out; no namespace admits nothing",
		tq:         builders.TenantQuota("medai").NoGPUs().GPUs("b200", 8).Obj(),
		namespaces: nil,
		stop:       kueue.None,
		want: kueue.ClusterQueueSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: NamespaceNameLabel, Operator: metav1.LabelSelectorOpDoesNotExist}}},
			Preemption: &kueue.ClusterQueuePreemption{WithinClusterQueue: kueue.PreemptionPolicyLowerPriority, ReclaimWithinCohort: kueue.PreemptionPolicyAny},
			StopPolicy: ptr.To(kueue.None),
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cq := &kueue.ClusterQueue{}
			ApplyClusterQueue(cq, tc.tq, testClasses, tc.namespaces, tc.stop, tc.tq.Spec.Budget != nil)
			if diff := cmp.Diff(tc.want, cq.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			if cq.Name != "tenant-medai" || cq.Labels[aifv1.TenantLabel] != "medai" || cq.Labels[aifv1.ManagedByLabel] != aifv1.ManagedByValue {
				t.Errorf("name or labels: %s %v", cq.Name, cq.Labels)
			}
			if len(cq.OwnerReferences) != 1 || !ptr.Deref(cq.OwnerReferences[0].Controller, false) {
				t.Errorf("owner references: %v", cq.OwnerReferences)
			}
		})
	}
}

func TestApplyClusterQueueKeepsFieldsItDoesNotManage(t *testing.T) {
	cq := &kueue.ClusterQueue{Spec: kueue.ClusterQueueSpec{
		QueueingStrategy: kueue.BestEffortFIFO,
		Preemption:       &kueue.ClusterQueuePreemption{BorrowWithinCohort: &kueue.BorrowWithinCohort{Policy: kueue.BorrowWithinCohortPolicyNever}},
	}}
	ApplyClusterQueue(cq, builders.TenantQuota("medai").Obj(), testClasses, []string{"medai"}, kueue.None, false)
	if cq.Spec.QueueingStrategy != kueue.BestEffortFIFO || cq.Spec.Preemption.BorrowWithinCohort == nil {
		t.Fatalf("server-defaulted fields were dropped: %+v", cq.Spec)
	}
	before := cq.DeepCopy()
	ApplyClusterQueue(cq, builders.TenantQuota("medai").Obj(), testClasses, []string{"medai"}, kueue.None, false)
	if diff := cmp.Diff(before, cq); diff != "" {
		t.Fatalf("a second apply changed the object:\n%s", diff)
	}
}

// The budget check joins the checks a platform team put on the queue, and leaves them when the budget goes.
func TestBudgetCheckOnTheClusterQueue(t *testing.T) {
	other := kueue.AdmissionCheckStrategyRule{Name: "provisioning", OnFlavors: []kueue.ResourceFlavorReference{"h100-80gb"}}
	cq := &kueue.ClusterQueue{Spec: kueue.ClusterQueueSpec{AdmissionChecksStrategy: &kueue.AdmissionChecksStrategy{AdmissionChecks: []kueue.AdmissionCheckStrategyRule{other}}}}
	budgeted := builders.TenantQuota("medai").Budget(10, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj()
	ApplyClusterQueue(cq, budgeted, testClasses, []string{"medai"}, kueue.None, true)
	want := []kueue.AdmissionCheckStrategyRule{other, {Name: aifv1.BudgetCheckName}}
	if diff := cmp.Diff(want, cq.Spec.AdmissionChecksStrategy.AdmissionChecks); diff != "" {
		t.Fatalf("with a budget (-want +got):\n%s", diff)
	}
	ApplyClusterQueue(cq, budgeted, testClasses, []string{"medai"}, kueue.None, true)
	if diff := cmp.Diff(want, cq.Spec.AdmissionChecksStrategy.AdmissionChecks); diff != "" {
		t.Fatalf("a second apply (-want +got):\n%s", diff)
	}
	ApplyClusterQueue(cq, builders.TenantQuota("medai").Obj(), testClasses, []string{"medai"}, kueue.None, false)
	if diff := cmp.Diff([]kueue.AdmissionCheckStrategyRule{other}, cq.Spec.AdmissionChecksStrategy.AdmissionChecks); diff != "" {
		t.Fatalf("without a budget (-want +got):\n%s", diff)
	}
	fresh := &kueue.ClusterQueue{}
	ApplyClusterQueue(fresh, builders.TenantQuota("medai").Obj(), testClasses, []string{"medai"}, kueue.None, false)
	if fresh.Spec.AdmissionChecksStrategy != nil {
		t.Fatalf("a tenant without a budget got admission checks: %+v", fresh.Spec.AdmissionChecksStrategy)
	}
}

func TestApplyLocalQueue(t *testing.T) {
	lq := &kueue.LocalQueue{}
	tq := builders.TenantQuota("medai").Obj()
	ApplyLocalQueue(lq, tq, "medai-dev", "default")
	if lq.Namespace != "medai-dev" || lq.Name != "default" || lq.Spec.ClusterQueue != "tenant-medai" || lq.Labels[aifv1.TenantLabel] != "medai" {
		t.Fatalf("unexpected LocalQueue: %+v", lq)
	}
}

func TestConflicts(t *testing.T) {
	at := func(name string, created time.Time, ns ...string) aifv1.TenantQuota {
		tq := builders.TenantQuota(name).Namespaces(ns...).Obj()
		tq.CreationTimestamp = metav1.NewTime(created)
		return *tq
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	old, same, young := at("old", t0, "a", "b"), at("aaa", t0.Add(time.Hour), "c"), at("young", t0.Add(time.Hour), "b", "c", "d")
	all := []aifv1.TenantQuota{old, same, young}
	cases := []struct {
		tq   aifv1.TenantQuota
		want map[string]string
	}{
		{old, map[string]string{}},
		{same, map[string]string{}},
		{young, map[string]string{"b": "old", "c": "aaa"}}, // same age: the name decides
	}
	for _, tc := range cases {
		if diff := cmp.Diff(tc.want, Conflicts(&tc.tq, all)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.tq.Name, diff)
		}
	}
}

func TestStopPolicy(t *testing.T) {
	hold := builders.TenantQuota("a").Budget(1, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj()
	drain := builders.TenantQuota("a").Budget(1, aifv1.PeriodMonth, aifv1.ExhaustedHoldAndDrain).Obj()
	deleting := builders.TenantQuota("a").Budget(1, aifv1.PeriodMonth, aifv1.ExhaustedHoldAndDrain).Obj()
	deleting.DeletionTimestamp = ptr.To(metav1.Now())
	cases := []struct {
		tq        *aifv1.TenantQuota
		exhausted bool
		want      kueue.StopPolicy
	}{
		{hold, false, kueue.None}, {hold, true, kueue.Hold}, {drain, true, kueue.HoldAndDrain},
		{deleting, false, kueue.Hold}, {deleting, true, kueue.Hold},
	}
	for i, tc := range cases {
		if got := StopPolicy(tc.tq, tc.exhausted); got != tc.want {
			t.Errorf("case %d: got %s, want %s", i, got, tc.want)
		}
	}
}

func TestUsageOf(t *testing.T) {
	admitted := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	done := admitted.Add(time.Hour)
	wl := &kueue.Workload{
		ObjectMeta: metav1.ObjectMeta{UID: "u", Annotations: map[string]string{accounting.BaselineAnnotation: "2026-11-01T00:00:00Z=42"}},
		Spec: kueue.WorkloadSpec{PodSets: []kueue.PodSet{{Count: 3, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"nvidia.com/gpu": q("8"), corev1.ResourceCPU: q("32")}}},
			{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": q("1")}}},
		}}}}}},
		Status: kueue.WorkloadStatus{
			AccumulatedPastExecutionTimeSeconds: ptr.To[int32](60),
			Conditions: []metav1.Condition{
				{Type: kueue.WorkloadAdmitted, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(admitted)},
				{Type: kueue.WorkloadFinished, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(done)},
			},
		},
	}
	got := accounting.UsageOf(wl, func(r corev1.ResourceName) bool { return r == "nvidia.com/gpu" })
	if got.GPUs != 27 || got.PastSeconds != 60 || !got.AdmittedAt.Equal(admitted) || !got.EndedAt.Equal(done) ||
		got.Baseline == nil || got.Baseline.GPUSeconds != 42 {
		t.Fatalf("unexpected usage: %+v", got)
	}
}

// The budget charges what Kueue admitted (its admission's resource usage), not what one container of the
// template asks for; before an admission, or after an eviction, what the pods would take, sidecars and init
// containers included as Kueue counts them.
func TestUsageOfChargesTheAdmission(t *testing.T) {
	isGPU := func(r corev1.ResourceName) bool { return r == "nvidia.com/gpu" }
	gpus := func(n string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: corev1.ResourceList{"nvidia.com/gpu": q(n)}}
	}
	always := ptr.To(corev1.ContainerRestartPolicyAlways)
	spec := corev1.PodSpec{
		InitContainers: []corev1.Container{
			{Name: "fetch", Resources: gpus("2")},                        // before the sidecar: 2 alone
			{Name: "miner", Resources: gpus("4"), RestartPolicy: always}, // a sidecar runs beside the trainer
			{Name: "warmup", Resources: gpus("9")},                       // 4 + 9 while it runs
		},
		Containers: []corev1.Container{{Name: "trainer", Resources: gpus("8")}},
	}
	wl := &kueue.Workload{Spec: kueue.WorkloadSpec{PodSets: []kueue.PodSet{{Name: "main", Count: 2, Template: corev1.PodTemplateSpec{Spec: spec}}}}}
	if got := accounting.UsageOf(wl, isGPU).GPUs; got != 2*13 {
		t.Errorf("queued: %d GPUs, want 26 (the warm-up beside the sidecar, per pod)", got)
	}
	wl.Status.Admission = &kueue.Admission{PodSetAssignments: []kueue.PodSetAssignment{{Name: "main", Count: ptr.To[int32](2),
		ResourceUsage: corev1.ResourceList{"nvidia.com/gpu": q("26"), corev1.ResourceCPU: q("64")}}}}
	if got := accounting.UsageOf(wl, isGPU).GPUs; got != 26 {
		t.Errorf("admitted: %d GPUs, want the admission's 26", got)
	}
}
