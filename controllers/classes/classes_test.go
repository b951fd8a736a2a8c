package classes

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
)

func node(name string, labels map[string]string, capacity corev1.ResourceList) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Status: corev1.NodeStatus{Capacity: capacity}}
}

func TestDiscover(t *testing.T) {
	tol := []corev1.Toleration{configv1.DefaultGPUToleration()}
	h100 := map[string]string{ProductLabel: "NVIDIA-H100-80GB-HBM3", MemoryLabel: "81559"}
	a100 := map[string]string{ProductLabel: "NVIDIA-A100-SXM4-80GB"}
	nodes := []corev1.Node{
		node("h1", h100, corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8"), corev1.ResourceCPU: resource.MustParse("96")}),
		node("h2", h100, corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8")}),
		node("a1", a100, corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("0"), "nvidia.com/mig-1g.10gb": resource.MustParse("56")}),
		node("cpu", map[string]string{}, corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64")}),
		node("noproduct", map[string]string{}, corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8")}),
	}
	cases := []struct {
		name       string
		configured []Class
		want       []Class
	}{{
		name: "whole GPUs and MIG slices become classes",
		want: []Class{
			{Name: "nvidia-a100-sxm4-80gb-mig-1g-10gb", Resource: "nvidia.com/mig-1g.10gb", NodeLabels: a100, Tolerations: tol, PowerWatts: 700, Discovered: true},
			{Name: "nvidia-h100-80gb-hbm3", Resource: "nvidia.com/gpu", NodeLabels: h100, Tolerations: tol, PowerWatts: 700, Discovered: true},
		},
	}, {
		name:       "nodes a configured class selects add nothing",
		configured: []Class{{Name: "h100-80gb", Resource: "nvidia.com/gpu", NodeLabels: map[string]string{ProductLabel: "NVIDIA-H100-80GB-HBM3"}}},
		want: []Class{
			{Name: "nvidia-a100-sxm4-80gb-mig-1g-10gb", Resource: "nvidia.com/mig-1g.10gb", NodeLabels: a100, Tolerations: tol, PowerWatts: 700, Discovered: true},
		},
	}, {
		name:       "a configured class of another resource does not cover MIG slices",
		configured: []Class{{Name: "a100", Resource: "nvidia.com/gpu", NodeLabels: a100}},
		want: []Class{
			{Name: "nvidia-a100-sxm4-80gb-mig-1g-10gb", Resource: "nvidia.com/mig-1g.10gb", NodeLabels: a100, Tolerations: tol, PowerWatts: 700, Discovered: true},
			{Name: "nvidia-h100-80gb-hbm3", Resource: "nvidia.com/gpu", NodeLabels: h100, Tolerations: tol, PowerWatts: 700, Discovered: true},
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Discover(nodes, tc.configured, 700)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesired(t *testing.T) {
	cfg := &configv1.Configuration{GPUClasses: []configv1.GPUClass{{Name: "nvidia-h100-80gb-hbm3", Resource: "nvidia.com/gpu",
		NodeLabels: map[string]string{ProductLabel: "other"}}}}
	nodes := []corev1.Node{node("h1", map[string]string{ProductLabel: "NVIDIA-H100-80GB-HBM3"}, corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8")})}
	if got := Desired(cfg, nodes); len(got) != 1 || got[0].Discovered {
		t.Fatalf("discovery off: want only the configured class, got %+v", got)
	}
	cfg.Discovery.Enabled = true
	if got := Desired(cfg, nodes); len(got) != 1 || got[0].Discovered {
		t.Fatalf("a configured class keeps its name against a discovered one: got %+v", got)
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"NVIDIA-H100-80GB-HBM3":             "nvidia-h100-80gb-hbm3",
		"NVIDIA A100 SXM4 80GB-mig-1g.10gb": "nvidia-a100-sxm4-80gb-mig-1g-10gb",
		"--Tesla_V100--":                    "tesla-v100",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Slug(string(make([]byte, 80)) + "x"); len(got) > 63 {
		t.Errorf("Slug is longer than a DNS label: %q", got)
	}
}

func TestFlavorRoundTrip(t *testing.T) {
	c := Class{Name: "h100-80gb", Resource: "nvidia.com/gpu", NodeLabels: map[string]string{ProductLabel: "H100"},
		Tolerations: []corev1.Toleration{configv1.DefaultGPUToleration()}, PowerWatts: 700}
	rf := Flavor(c)
	got, ok := FromFlavor(rf)
	if !ok {
		t.Fatal("a managed flavor was not recognised")
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if _, ok := FromFlavor(&kueue.ResourceFlavor{ObjectMeta: metav1.ObjectMeta{Name: "foreign"}}); ok {
		t.Fatal("a flavor the operator does not manage was taken for a class")
	}
}
