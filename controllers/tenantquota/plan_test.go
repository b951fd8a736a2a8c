package tenantquota

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/controllers/podpolicy"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

// The writes that keep a tenant's queues in line, as data: which, in which order.
func TestPlanQueues(t *testing.T) {
	cfg := &configv1.Configuration{}
	configv1.SetDefaults(cfg)
	tenant := func(budget bool) *aifv1.TenantQuota {
		b := builders.TenantQuota("medai").Namespaces("medai-a", "medai-b").GPUs(builders.GPUClassH100, 8)
		if budget {
			b = b.Budget(100, aifv1.PeriodMonth, aifv1.ExhaustedHold)
		}
		return b.Obj()
	}
	labelled := podpolicy.NamespaceLabels("medai", podpolicy.For(cfg, tenant(false)).Level)
	// inLine is what a pass that made every write would observe next.
	inLine := func(tq *aifv1.TenantQuota) *Observed {
		obs := &Observed{
			Existing:        map[string]bool{"medai-a": true, "medai-b": true},
			NamespaceLabels: map[string]map[string]string{"medai-a": labelled, "medai-b": labelled},
			Classes:         testClasses,
			LocalQueues:     map[string]*kueue.LocalQueue{},
			ClusterQueue:    &kueue.ClusterQueue{},
		}
		ApplyClusterQueue(obs.ClusterQueue, tq, obs.Classes, obs.Namespaces(tq), kueue.None, tq.Spec.Budget != nil)
		for _, ns := range tq.Spec.Namespaces {
			obs.LocalQueues[ns] = &kueue.LocalQueue{}
			ApplyLocalQueue(obs.LocalQueues[ns], tq, ns, cfg.DefaultQueueName)
		}
		if tq.Spec.Budget != nil {
			obs.BudgetCheck = BudgetCheck()
			obs.BudgetCheck.Status.Conditions = []metav1.Condition{{Type: kueue.AdmissionCheckActive, Status: metav1.ConditionTrue}}
		}
		return obs
	}
	type step struct {
		Verb   apply.Verb
		Kind   string
		Name   string
		Status bool
	}
	kind := func(w apply.Write) string {
		switch w.Object.(type) {
		case *kueue.AdmissionCheck:
			return "AdmissionCheck"
		case *kueue.ClusterQueue:
			return "ClusterQueue"
		case *kueue.LocalQueue:
			return "LocalQueue"
		case *metav1.PartialObjectMetadata:
			return "Namespace"
		}
		return "?"
	}
	cases := []struct {
		name  string
		tq    *aifv1.TenantQuota
		edit  func(*Observed)
		want  []step
		wantE bool
	}{{
		name: "in line: every write changes nothing and is skipped when applied",
		tq:   tenant(false),
		want: []step{{apply.Update, "ClusterQueue", "tenant-medai", false}, {apply.Update, "LocalQueue", "default", false}, {apply.Update, "LocalQueue", "default", false}},
	}, {
		name: "first pass of a budgeted tenant: the check, the ClusterQueue, then each namespace's labels before its queue",
		tq:   tenant(true),
		edit: func(o *Observed) {
			o.BudgetCheck, o.ClusterQueue, o.LocalQueues = nil, nil, map[string]*kueue.LocalQueue{}
			o.NamespaceLabels = map[string]map[string]string{"medai-a": nil, "medai-b": {"team": "x"}}
		},
		want: []step{
			{apply.Create, "AdmissionCheck", aifv1.BudgetCheckName, false}, {apply.Create, "ClusterQueue", "tenant-medai", false},
			{apply.Patch, "Namespace", "medai-a", false}, {apply.Create, "LocalQueue", "default", false},
			{apply.Patch, "Namespace", "medai-b", false}, {apply.Create, "LocalQueue", "default", false},
		},
	}, {
		name: "the check exists inactive: it is marked Active through its status",
		tq:   tenant(true),
		edit: func(o *Observed) { o.BudgetCheck.Status.Conditions = nil },
		want: []step{
			{apply.Update, "AdmissionCheck", aifv1.BudgetCheckName, true}, {apply.Update, "ClusterQueue", "tenant-medai", false},
			{apply.Update, "LocalQueue", "default", false}, {apply.Update, "LocalQueue", "default", false},
		},
	}, {
		name: "a namespace that does not exist yet gets nothing",
		tq:   tenant(false),
		edit: func(o *Observed) { o.Existing["medai-b"] = false; delete(o.LocalQueues, "medai-b") },
		want: []step{{apply.Update, "ClusterQueue", "tenant-medai", false}, {apply.Update, "LocalQueue", "default", false}},
	}, {
		name: "a tenant on its way out gets no new ClusterQueue, no check and no namespace writes",
		tq: func() *aifv1.TenantQuota {
			tq := tenant(true)
			tq.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			return tq
		}(),
		edit: func(o *Observed) { o.ClusterQueue, o.BudgetCheck = nil, nil },
	}, {
		name:  "a check of that name owned by another controller stops the plan",
		tq:    tenant(true),
		edit:  func(o *Observed) { o.BudgetCheck.Spec.ControllerName = "example.com/other" },
		wantE: true,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obs := inLine(tc.tq)
			if tc.edit != nil {
				tc.edit(obs)
			}
			plan, err := planQueues(tc.tq, obs, cfg, kueue.None)
			if (err != nil) != tc.wantE {
				t.Fatalf("err = %v, want an error: %t", err, tc.wantE)
			}
			var got []step
			for _, w := range plan {
				got = append(got, step{w.Verb, kind(w), w.Object.GetName(), w.Status})
				if w.Verb == apply.Update && tc.edit == nil && !cmp.Equal(w.Current, w.Object) {
					t.Errorf("%s %s changes an object in line: %s", w.Verb, w.Object.GetName(), cmp.Diff(w.Current, w.Object))
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}
