// Package classes holds the GPU classes the operator knows: those of its configuration and, when discovery is
// on, those found on nodes through GPU Feature Discovery labels and MIG resources; how a class is kept as a Kueue
// ResourceFlavor; and how the controllers read the classes back from the flavors.
package classes

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// Node labels and resources published by GPU Feature Discovery and the NVIDIA device plugin.
const (
	ProductLabel      = "nvidia.com/gpu.product"
	MemoryLabel       = "nvidia.com/gpu.memory"
	MIGResourcePrefix = "nvidia.com/mig-"
)

// Annotations on a ResourceFlavor that tell the other controllers what the class is.
const (
	ResourceAnnotation   = "aifactory.eu/gpu-resource"
	PowerAnnotation      = "aifactory.eu/gpu-power-watts"
	DiscoveredAnnotation = "aifactory.eu/discovered"
)

// Class is a GPU class as the operator uses it.
type Class struct {
	Name        string
	Resource    corev1.ResourceName
	NodeLabels  map[string]string
	Tolerations []corev1.Toleration
	PowerWatts  int32
	Discovered  bool
}

// FromConfig returns the configured classes.
func FromConfig(cfg *configv1.Configuration) []Class {
	out := make([]Class, 0, len(cfg.GPUClasses))
	for _, g := range cfg.GPUClasses {
		out = append(out, Class{Name: g.Name, Resource: g.Resource, NodeLabels: g.NodeLabels, Tolerations: g.Tolerations, PowerWatts: g.PowerWatts})
	}
	return out
}

// Discover derives classes from GPU nodes: one per product with whole GPUs, and one per product and MIG profile.
// A node whose labels a configured class already selects adds nothing for that resource.
func Discover(nodes []corev1.Node, configured []Class, powerWatts int32) []Class {
	found := map[string]Class{}
	for _, n := range nodes {
		product := n.Labels[ProductLabel]
		if product == "" {
			continue
		}
		labels := map[string]string{ProductLabel: product}
		if mem := n.Labels[MemoryLabel]; mem != "" {
			labels[MemoryLabel] = mem
		}
		for res, q := range n.Status.Capacity {
			if q.IsZero() || (res != configv1.DefaultGPUResource && !strings.HasPrefix(string(res), MIGResourcePrefix)) {
				continue
			}
			if coveredBy(configured, res, n.Labels) {
				continue
			}
			name := Slug(product)
			if res != configv1.DefaultGPUResource {
				name = Slug(product + "-" + strings.TrimPrefix(string(res), "nvidia.com/"))
			}
			found[name] = Class{
				Name: name, Resource: res, NodeLabels: labels, PowerWatts: powerWatts, Discovered: true,
				Tolerations: []corev1.Toleration{configv1.DefaultGPUToleration()},
			}
		}
	}
	out := make([]Class, 0, len(found))
	for _, c := range found {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Desired is the configured classes plus the discovered ones whose names do not clash with a configured class.
func Desired(cfg *configv1.Configuration, nodes []corev1.Node) []Class {
	classes := FromConfig(cfg)
	if !cfg.Discovery.Enabled {
		return classes
	}
	names := map[string]bool{}
	for _, c := range classes {
		names[c.Name] = true
	}
	for _, c := range Discover(nodes, classes, cfg.Discovery.DefaultPowerWatts) {
		if !names[c.Name] {
			classes = append(classes, c)
		}
	}
	return classes
}

func coveredBy(classes []Class, res corev1.ResourceName, nodeLabels map[string]string) bool {
	for _, c := range classes {
		if c.Resource != res {
			continue
		}
		match := true
		for k, v := range c.NodeLabels {
			if nodeLabels[k] != v {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// Slug turns a product name such as "NVIDIA-H100-80GB-HBM3" into a class name: "nvidia-h100-80gb-hbm3".
func Slug(s string) string {
	s = strings.Trim(nonName.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

// Flavor is the ResourceFlavor of a class: its node labels are injected into admitted pods as a node selector
// and its tolerations let them onto the tainted GPU nodes.
func Flavor(c Class) *kueue.ResourceFlavor {
	rf := &kueue.ResourceFlavor{ObjectMeta: metav1.ObjectMeta{Name: c.Name}}
	ApplyFlavor(rf, c)
	return rf
}

// ApplyFlavor sets the fields of rf that the operator manages, leaving the rest as they are.
func ApplyFlavor(rf *kueue.ResourceFlavor, c Class) {
	if rf.Labels == nil {
		rf.Labels = map[string]string{}
	}
	rf.Labels[aifv1.ManagedByLabel] = aifv1.ManagedByValue
	if rf.Annotations == nil {
		rf.Annotations = map[string]string{}
	}
	rf.Annotations[ResourceAnnotation] = string(c.Resource)
	rf.Annotations[PowerAnnotation] = strconv.Itoa(int(c.PowerWatts))
	if c.Discovered {
		rf.Annotations[DiscoveredAnnotation] = "true"
	} else {
		delete(rf.Annotations, DiscoveredAnnotation)
	}
	rf.Spec.NodeLabels = c.NodeLabels
	rf.Spec.Tolerations = c.Tolerations
}

// FromFlavor reads a class back from a ResourceFlavor the operator manages.
func FromFlavor(rf *kueue.ResourceFlavor) (Class, bool) {
	res := rf.Annotations[ResourceAnnotation]
	if rf.Labels[aifv1.ManagedByLabel] != aifv1.ManagedByValue || res == "" {
		return Class{}, false
	}
	power, _ := strconv.Atoi(rf.Annotations[PowerAnnotation])
	return Class{
		Name: rf.Name, Resource: corev1.ResourceName(res), NodeLabels: rf.Spec.NodeLabels,
		Tolerations: rf.Spec.Tolerations, PowerWatts: int32(power), Discovered: rf.Annotations[DiscoveredAnnotation] == "true",
	}, true
}

// Known reads the GPU classes that currently have a managed ResourceFlavor, by name.
func Known(ctx context.Context, c client.Reader) (map[string]Class, error) {
	var flavors kueue.ResourceFlavorList
	if err := c.List(ctx, &flavors, client.MatchingLabels{aifv1.ManagedByLabel: aifv1.ManagedByValue}); err != nil {
		return nil, fmt.Errorf("listing resource flavors: %w", err)
	}
	out := map[string]Class{}
	for i := range flavors.Items {
		if cl, ok := FromFlavor(&flavors.Items[i]); ok {
			out[cl.Name] = cl
		}
	}
	return out, nil
}
