package factory

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names the factory's samples and tests rely on.
const (
	ClassH100          = "h100-80gb"
	ClassMIG           = "a100-mig-1g10gb"
	FilesystemDatasets = "lustre-datasets"
	FilesystemScratch  = "lustre-scratch"

	migResource  = "nvidia.com/mig-1g.10gb"
	productLabel = "nvidia.com/gpu.product"
	productH100  = "NVIDIA-H100-80GB-HBM3"
	productA100  = "NVIDIA-A100-SXM4-80GB"
	// gpuTaint keeps pods that do not ask for GPUs off GPU nodes, as GPU clusters usually do.
	gpuTaint = "nvidia.com/gpu"
)

// H100Nodes and the other counts describe the simulated cluster.
const (
	H100Nodes        = 4
	GPUsPerH100Node  = 8
	MIGSlicesPerNode = 56 // one A100 node: 8 GPUs in seven 1g.10gb slices each
)

// Nodes are the simulated nodes: four nodes of eight H100 GPUs, one A100 node split into MIG 1g.10gb slices,
// both tainted for GPU work, and one CPU node for everything else. Labels and capacity are what the NVIDIA
// device plugin and GPU Feature Discovery publish.
func Nodes() []*corev1.Node {
	var out []*corev1.Node
	for i := range H100Nodes {
		out = append(out, node(fmt.Sprintf("gpu-h100-%d", i), map[string]string{
			productLabel: productH100, "nvidia.com/gpu.count": "8", "nvidia.com/gpu.memory": "81559",
			"nvidia.com/gpu.family": "hopper", "nvidia.com/mig.capable": "true", "nvidia.com/mig.strategy": "single",
		}, corev1.ResourceList{"nvidia.com/gpu": *resource.NewQuantity(GPUsPerH100Node, resource.DecimalSI)}, true))
	}
	out = append(out, node("gpu-a100-mig-0", map[string]string{
		productLabel: productA100, "nvidia.com/gpu.count": "8", "nvidia.com/gpu.memory": "81920",
		"nvidia.com/gpu.family": "ampere", "nvidia.com/mig.capable": "true", "nvidia.com/mig.strategy": "mixed",
		"nvidia.com/mig.config": "all-1g.10gb", "nvidia.com/mig-1g.10gb.count": "56", "nvidia.com/mig-1g.10gb.memory": "9728",
	}, corev1.ResourceList{migResource: *resource.NewQuantity(MIGSlicesPerNode, resource.DecimalSI)}, true))
	out = append(out, node("cpu-0", nil, nil, false))
	return out
}

func node(name string, labels map[string]string, gpus corev1.ResourceList, tainted bool) *corev1.Node {
	l := map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"}
	for k, v := range labels {
		l[k] = v
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("96"), corev1.ResourceMemory: resource.MustParse("1Ti"),
		corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("3Ti"),
	}
	for k, v := range gpus {
		capacity[k] = v
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l, Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"}},
		Status:     corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if tainted {
		n.Spec.Taints = []corev1.Taint{{Key: gpuTaint, Value: "present", Effect: corev1.TaintEffectNoSchedule}}
	}
	return n
}

// ensureNodes creates the simulated nodes that are missing and sets their capacity (kwok keeps it).
func (f *Factory) ensureNodes(ctx context.Context) error {
	for _, n := range Nodes() {
		st := n.Status
		if err := f.Client.Create(ctx, n); client.IgnoreAlreadyExists(err) != nil {
			return err
		}
		cur := &corev1.Node{}
		if err := f.Client.Get(ctx, client.ObjectKeyFromObject(n), cur); err != nil {
			return err
		}
		if cur.Status.Capacity.Name(corev1.ResourceCPU, "").IsZero() {
			cur.Status.Capacity, cur.Status.Allocatable = st.Capacity, st.Allocatable
			if err := f.Client.Status().Update(ctx, cur); err != nil {
				return fmt.Errorf("node %s capacity: %w", n.Name, err)
			}
		}
	}
	return nil
}
