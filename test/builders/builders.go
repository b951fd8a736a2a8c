// Package builders makes TenantQuotas, DatasetMounts and TrainingJobs for tests: a valid object by default,
// changed one field at a time with chained calls. Unit, integration and end-to-end tests share them.
package builders

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// Default names used by the builders.
const (
	GPUClassH100      = "h100-80gb"
	GPUClassMIG       = "a100-mig-1g10gb"
	MIGResource       = "nvidia.com/mig-1g.10gb"
	FilesystemData    = "lustre-datasets"
	FilesystemScratch = "lustre-scratch"
	TrainerImage      = "registry.example.eu/medai/trainer:1.0"
)

// TenantQuotaBuilder builds a TenantQuota.
type TenantQuotaBuilder struct{ obj aifv1.TenantQuota }

// TenantQuota is a tenant with one namespace of its own name and 8 nominal h100-80gb GPUs.
func TenantQuota(name string) *TenantQuotaBuilder {
	return &TenantQuotaBuilder{obj: aifv1.TenantQuota{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: aifv1.TenantQuotaSpec{
			Namespaces: []string{name},
			GPUs:       []aifv1.GPUQuota{{GPUClass: GPUClassH100, Nominal: 8}},
		},
	}}
}

// Namespaces sets the tenant's namespaces.
func (b *TenantQuotaBuilder) Namespaces(ns ...string) *TenantQuotaBuilder {
	b.obj.Spec.Namespaces = ns
	return b
}

// Cohort sets the cohort.
func (b *TenantQuotaBuilder) Cohort(c string) *TenantQuotaBuilder {
	b.obj.Spec.Cohort = c
	return b
}

// GPUs sets the nominal quota of a class, adding the class if it is not there.
func (b *TenantQuotaBuilder) GPUs(class string, nominal int32) *TenantQuotaBuilder {
	b.gpu(class).Nominal = nominal
	return b
}

// Limits sets the borrowing and lending limits of a class (nil leaves a limit unset).
func (b *TenantQuotaBuilder) Limits(class string, borrowing, lending *int32) *TenantQuotaBuilder {
	g := b.gpu(class)
	g.BorrowingLimit, g.LendingLimit = borrowing, lending
	return b
}

func (b *TenantQuotaBuilder) gpu(class string) *aifv1.GPUQuota {
	for i := range b.obj.Spec.GPUs {
		if b.obj.Spec.GPUs[i].GPUClass == class {
			return &b.obj.Spec.GPUs[i]
		}
	}
	b.obj.Spec.GPUs = append(b.obj.Spec.GPUs, aifv1.GPUQuota{GPUClass: class})
	return &b.obj.Spec.GPUs[len(b.obj.Spec.GPUs)-1]
}

// NoGPUs removes every GPU class.
func (b *TenantQuotaBuilder) NoGPUs() *TenantQuotaBuilder {
	b.obj.Spec.GPUs = nil
	return b
}

// Budget sets a GPU-hour budget.
func (b *TenantQuotaBuilder) Budget(gpuHours int64, period aifv1.BudgetPeriod, onExhausted aifv1.ExhaustedPolicy) *TenantQuotaBuilder {
	b.obj.Spec.Budget = &aifv1.Budget{GPUHours: gpuHours, Period: period, OnExhausted: onExhausted}
	return b
}

// FairSharingWeight sets the fair-sharing weight.
func (b *TenantQuotaBuilder) FairSharingWeight(w string) *TenantQuotaBuilder {
	b.obj.Spec.FairSharingWeight = ptr.To(resource.MustParse(w))
	return b
}

// Storage adds a storage root.
func (b *TenantQuotaBuilder) Storage(filesystem, path string, access aifv1.Access) *TenantQuotaBuilder {
	b.obj.Spec.Storage = append(b.obj.Spec.Storage, aifv1.StorageRoot{Filesystem: filesystem, Path: path, Access: access})
	return b
}

// Classifications sets the data classes the tenant may use.
func (b *TenantQuotaBuilder) Classifications(c ...aifv1.DataClassification) *TenantQuotaBuilder {
	b.obj.Spec.DataClassifications = c
	return b
}

// Obj returns a copy of the object.
func (b *TenantQuotaBuilder) Obj() *aifv1.TenantQuota { return b.obj.DeepCopy() }

// DatasetMountBuilder builds a DatasetMount.
type DatasetMountBuilder struct{ obj aifv1.DatasetMount }

// DatasetMount is a ReadOnly internal dataset on lustre-datasets at path.
func DatasetMount(namespace, name, path string) *DatasetMountBuilder {
	return &DatasetMountBuilder{obj: aifv1.DatasetMount{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: aifv1.DatasetMountSpec{
			Filesystem:     FilesystemData,
			Path:           path,
			Access:         aifv1.ReadOnly,
			Classification: aifv1.ClassificationInternal,
		},
	}}
}

// Filesystem sets the filesystem.
func (b *DatasetMountBuilder) Filesystem(fs string) *DatasetMountBuilder {
	b.obj.Spec.Filesystem = fs
	return b
}

// Access sets the access.
func (b *DatasetMountBuilder) Access(a aifv1.Access) *DatasetMountBuilder {
	b.obj.Spec.Access = a
	return b
}

// Classification sets the data class.
func (b *DatasetMountBuilder) Classification(c aifv1.DataClassification) *DatasetMountBuilder {
	b.obj.Spec.Classification = c
	return b
}

// Version sets the version.
func (b *DatasetMountBuilder) Version(v string) *DatasetMountBuilder {
	b.obj.Spec.Version = v
	return b
}

// Verification sets the verification mode.
func (b *DatasetMountBuilder) Verification(m aifv1.VerificationMode) *DatasetMountBuilder {
	b.obj.Spec.Verification = m
	return b
}

// Obj returns a copy of the object.
func (b *DatasetMountBuilder) Obj() *aifv1.DatasetMount { return b.obj.DeepCopy() }

// TrainingJobBuilder builds a TrainingJob.
type TrainingJobBuilder struct{ obj aifv1.TrainingJob }

// TrainingJob is a 2-node, 8-GPU-per-node torchrun job on the default queue.
func TrainingJob(namespace, name string) *TrainingJobBuilder {
	return &TrainingJobBuilder{obj: aifv1.TrainingJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: aifv1.TrainingJobSpec{
			QueueName:   "default",
			Nodes:       2,
			GPUsPerNode: 8,
			GPUResource: "nvidia.com/gpu",
			MaxRestarts: 3,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name:    "trainer",
				Image:   TrainerImage,
				Command: []string{"torchrun", "train.py"},
			}}}},
		},
	}}
}

// Queue sets the LocalQueue.
func (b *TrainingJobBuilder) Queue(q string) *TrainingJobBuilder {
	b.obj.Spec.QueueName = q
	return b
}

// Priority sets the Kueue WorkloadPriorityClass.
func (b *TrainingJobBuilder) Priority(p string) *TrainingJobBuilder {
	b.obj.Spec.PriorityClassName = p
	return b
}

// Shape sets nodes and GPUs per node.
func (b *TrainingJobBuilder) Shape(nodes, gpusPerNode int32) *TrainingJobBuilder {
	b.obj.Spec.Nodes, b.obj.Spec.GPUsPerNode = nodes, gpusPerNode
	return b
}

// GPUClass pins a GPU class.
func (b *TrainingJobBuilder) GPUClass(c string) *TrainingJobBuilder {
	b.obj.Spec.GPUClass = c
	return b
}

// GPUResource sets the requested extended resource.
func (b *TrainingJobBuilder) GPUResource(r string) *TrainingJobBuilder {
	b.obj.Spec.GPUResource = r
	return b
}

// Dataset mounts a DatasetMount.
func (b *TrainingJobBuilder) Dataset(name, mountPath string) *TrainingJobBuilder {
	b.obj.Spec.Datasets = append(b.obj.Spec.Datasets, aifv1.DatasetRef{Name: name, MountPath: mountPath})
	return b
}

// Checkpoint sets the checkpoint DatasetMount.
func (b *TrainingJobBuilder) Checkpoint(datasetMount, mountPath string) *TrainingJobBuilder {
	b.obj.Spec.Checkpoint = &aifv1.CheckpointRef{DatasetMount: datasetMount, MountPath: mountPath}
	return b
}

// MaxRestarts sets the restart limit.
func (b *TrainingJobBuilder) MaxRestarts(n int32) *TrainingJobBuilder {
	b.obj.Spec.MaxRestarts = n
	return b
}

// MaxRunDuration bounds the run.
func (b *TrainingJobBuilder) MaxRunDuration(d time.Duration) *TrainingJobBuilder {
	b.obj.Spec.MaxRunDuration = &metav1.Duration{Duration: d}
	return b
}

// Suspend sets spec.suspend.
func (b *TrainingJobBuilder) Suspend(s bool) *TrainingJobBuilder {
	b.obj.Spec.Suspend = s
	return b
}

// SimulatedRuntime makes workers in the simulated factory run for d and then succeed or fail.
func (b *TrainingJobBuilder) SimulatedRuntime(d time.Duration, fail bool) *TrainingJobBuilder {
	if b.obj.Spec.Template.Annotations == nil {
		b.obj.Spec.Template.Annotations = map[string]string{}
	}
	b.obj.Spec.Template.Annotations[aifv1.SimulatedRuntimeAnnotation] = d.String()
	if fail {
		b.obj.Spec.Template.Annotations[aifv1.SimulatedResultAnnotation] = "Failed"
	}
	return b
}

// Containers replaces the template's containers.
func (b *TrainingJobBuilder) Containers(c ...corev1.Container) *TrainingJobBuilder {
	b.obj.Spec.Template.Spec.Containers = c
	return b
}

// Obj returns a copy of the object.
func (b *TrainingJobBuilder) Obj() *aifv1.TrainingJob { return b.obj.DeepCopy() }

// Job is a suspended Indexed batch/v1 Job of pods workers, each asking for gpus of gpuResource, submitted to a
// Kueue LocalQueue the way Kueue's webhook would leave it. Workers also ask for CPU and memory, which must never
// make the job inadmissible.
func Job(namespace, name, queue string, pods int32, gpuResource corev1.ResourceName, gpus int64) *batchv1.Job {
	gpu := *resource.NewQuantity(gpus, resource.DecimalSI)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"kueue.x-k8s.io/queue-name": queue}},
		Spec: batchv1.JobSpec{
			Parallelism:    ptr.To(pods),
			Completions:    ptr.To(pods),
			CompletionMode: ptr.To(batchv1.IndexedCompletion),
			Suspend:        ptr.To(true),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{
					Name:  "trainer",
					Image: TrainerImage,
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{gpuResource: gpu, corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi")},
						Limits:   corev1.ResourceList{gpuResource: gpu},
					},
				}},
			}},
		},
	}
}
