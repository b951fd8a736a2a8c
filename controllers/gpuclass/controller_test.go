package gpuclass

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"
	utiltestingapi "sigs.k8s.io/kueue/pkg/util/testing/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
)

// The plan of a pass, as data: which writes, in which order.
func TestDecide(t *testing.T) {
	cfg := &configv1.Configuration{GPUClasses: []configv1.GPUClass{
		{Name: "h100", Resource: "nvidia.com/gpu", NodeLabels: map[string]string{classes.ProductLabel: "NVIDIA-H100-80GB-HBM3"}, PowerWatts: 700},
		{Name: "a100", Resource: "nvidia.com/gpu", NodeLabels: map[string]string{classes.ProductLabel: "NVIDIA-A100-SXM4-80GB"}, PowerWatts: 400},
	}}
	known := classes.FromConfig(cfg)
	current := func(c classes.Class) kueue.ResourceFlavor { return *classes.Flavor(c) }
	changed := current(known[1])
	changed.Spec.NodeLabels = map[string]string{classes.ProductLabel: "NVIDIA-A100-PCIE-40GB"}
	stale := func(name string) kueue.ResourceFlavor {
		return current(classes.Class{Name: name, Resource: "nvidia.com/gpu", NodeLabels: map[string]string{classes.ProductLabel: name}})
	}
	going := stale("v100")
	going.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	queue := *utiltestingapi.MakeClusterQueue("tenant-a").ResourceGroup(*utiltestingapi.MakeFlavorQuotas("l40s").Resource("nvidia.com/gpu", "8").Obj()).Obj()
	type step struct {
		Verb apply.Verb
		Name string
	}
	cases := []struct {
		name string
		obs  Observed
		want []step
	}{
		{"first pass: every class created, in order", Observed{}, []step{{apply.Create, "h100"}, {apply.Create, "a100"}}},
		{"all up to date: no write", Observed{Flavors: []kueue.ResourceFlavor{current(known[0]), current(known[1])}}, nil},
		{"a changed class is updated", Observed{Flavors: []kueue.ResourceFlavor{current(known[0]), changed}}, []step{{apply.Update, "a100"}}},
		{
			"classes gone are deleted by name, after the creations, unless a queue names them or they are going",
			Observed{
				Flavors:       []kueue.ResourceFlavor{stale("t4"), going, stale("l40s"), stale("b200"), current(known[1])},
				ClusterQueues: []kueue.ClusterQueue{queue},
			},
			[]step{{apply.Create, "h100"}, {apply.Delete, "b200"}, {apply.Delete, "t4"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []step
			for _, w := range Decide(cfg, tc.obs) {
				got = append(got, step{w.Verb, w.Object.GetName()})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlavorsInUse(t *testing.T) {
	cqs := []kueue.ClusterQueue{*utiltestingapi.MakeClusterQueue("tenant-a").ResourceGroup(
		*utiltestingapi.MakeFlavorQuotas("a").Resource("nvidia.com/gpu", "8").Obj(),
		*utiltestingapi.MakeFlavorQuotas("b").Resource("nvidia.com/gpu", "8").Obj()).Obj()}
	if diff := cmp.Diff(map[string]bool{"a": true, "b": true}, FlavorsInUse(cqs)); diff != "" {
		t.Fatal(diff)
	}
}
