// Package index holds the manager's cache indexes. Register adds all of them at setup, before any controller
// or webhook starts, so that no controller depends on another one having registered the index it lists by.
package index

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// The indexes, by the field name a List passes in client.MatchingFields.
const (
	// WorkloadQueue indexes Kueue workloads by their LocalQueue name.
	WorkloadQueue = "spec.queueName"
	// WorkloadOwnerJob indexes Kueue workloads by the name of the batch/v1 Job that owns them.
	WorkloadOwnerJob = "metadata.ownerReferences.job"
	// TenantNamespace indexes TenantQuotas by the namespaces they list.
	TenantNamespace = "spec.namespaces"
	// TenantGPUClass indexes TenantQuotas by the GPU classes they list.
	TenantGPUClass = "spec.gpus.gpuClass"
	// TrainingJobDataset indexes TrainingJobs by the DatasetMounts they mount (datasets and checkpoint).
	TrainingJobDataset = "spec.datasetMounts"
	// DatasetTenant indexes DatasetMounts by the TenantQuota that granted them (status.tenant).
	DatasetTenant = "status.tenant"
)

type entry struct {
	obj   client.Object
	field string
	what  string
	fn    client.IndexerFunc
}

var entries = []entry{
	{&kueue.Workload{}, WorkloadQueue, "workloads by LocalQueue", func(o client.Object) []string {
		return []string{string(o.(*kueue.Workload).Spec.QueueName)}
	}},
	{&kueue.Workload{}, WorkloadOwnerJob, "workloads by Job", workloadJobs},
	{&aifv1.TenantQuota{}, TenantNamespace, "tenants by namespace", func(o client.Object) []string {
		return o.(*aifv1.TenantQuota).Spec.Namespaces
	}},
	{&aifv1.TenantQuota{}, TenantGPUClass, "tenants by GPU class", func(o client.Object) []string {
		var out []string
		for _, g := range o.(*aifv1.TenantQuota).Spec.GPUs {
			out = append(out, g.GPUClass)
		}
		return out
	}},
	{&aifv1.TrainingJob{}, TrainingJobDataset, "training jobs by dataset", func(o client.Object) []string {
		return DatasetsOf(o.(*aifv1.TrainingJob))
	}},
	{&aifv1.DatasetMount{}, DatasetTenant, "dataset mounts by tenant", func(o client.Object) []string {
		if t := o.(*aifv1.DatasetMount).Status.Tenant; t != "" {
			return []string{t}
		}
		return nil
	}},
}

// Register adds every index to the manager's field indexer.
func Register(ctx context.Context, idx client.FieldIndexer) error {
	for _, e := range entries {
		if err := idx.IndexField(ctx, e.obj, e.field, e.fn); err != nil {
			return fmt.Errorf("indexing %s: %w", e.what, err)
		}
	}
	return nil
}

// DatasetsOf are the DatasetMounts a TrainingJob mounts: its datasets, then its checkpoint.
func DatasetsOf(tj *aifv1.TrainingJob) []string {
	var out []string
	for _, d := range tj.Spec.Datasets {
		out = append(out, d.Name)
	}
	if tj.Spec.Checkpoint != nil {
		out = append(out, tj.Spec.Checkpoint.DatasetMount)
	}
	return out
}

func workloadJobs(o client.Object) []string {
	var out []string
	for _, ref := range o.GetOwnerReferences() {
		if ref.Kind == "Job" && ref.APIVersion == batchv1.SchemeGroupVersion.String() {
			out = append(out, ref.Name)
		}
	}
	return out
}
