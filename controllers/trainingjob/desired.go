package trainingjob

import (
	"fmt"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/dump"
	"k8s.io/utils/ptr"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/names"
)

// Kueue labels on a Job (see Kueue's pkg/controller/constants).
const (
	QueueLabel         = "kueue.x-k8s.io/queue-name"
	PriorityClassLabel = "kueue.x-k8s.io/priority-class"
	MaxExecTimeLabel   = "kueue.x-k8s.io/max-exec-time-seconds"
)

// MasterPort is the rendezvous port of worker 0.
const MasterPort = 29500

// completionIndexPath is where the Job controller puts a pod's completion index.
const completionIndexPath = "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']"

// Mount is a DatasetMount as a worker mounts it: its claim, and the folder inside the volume.
type Mount struct {
	Name      string
	ClaimName string
	SubPath   string
	MountPath string
	ReadOnly  bool
}

// Input is what the desired objects of one attempt depend on besides the TrainingJob.
type Input struct {
	// Attempt numbers the attempt; it names the Job.
	Attempt int32
	// Restarts is the number of restarts after worker failures so far; workers read it as
	// AIFACTORY_RESTART_COUNT.
	Restarts int32
	Class    *classes.Class // the pinned GPU class, if the job pins one
	Datasets []Mount
	// Checkpoint is the read-write checkpoint mount, if any.
	Checkpoint *Mount
	// MaxExecSeconds is Kueue's maximum execution time of the attempt: what is left of the run's bound; zero for
	// none.
	MaxExecSeconds int32
}

// ServiceName is the headless Service that gives workers stable host names; it is a DNS label.
func ServiceName(tj *aifv1.TrainingJob) string { return names.Short(tj.Name, 63) }

// JobName is the Job of one attempt. It leaves room for the completion index in the pods' host names
// ("<job>-<index>" must be a DNS label).
func JobName(tj *aifv1.TrainingJob, attempt int32) string {
	suffix := "-" + strconv.Itoa(int(attempt))
	return names.Short(tj.Name, 52-len(suffix)) + suffix
}

// JobLabel is the value of the TrainingJob label on its children (a label value is at most 63 characters).
func JobLabel(tj *aifv1.TrainingJob) string { return names.Short(tj.Name, 63) }

// MasterAddr is the stable host name of worker 0 of an attempt.
func MasterAddr(tj *aifv1.TrainingJob, attempt int32) string {
	return fmt.Sprintf("%s-0.%s", JobName(tj, attempt), ServiceName(tj))
}

func owner(tj *aifv1.TrainingJob) []metav1.OwnerReference {
	return []metav1.OwnerReference{*metav1.NewControllerRef(tj, aifv1.GroupVersion.WithKind("TrainingJob"))}
}

func labels(tj *aifv1.TrainingJob) map[string]string {
	return map[string]string{aifv1.ManagedByLabel: aifv1.ManagedByValue, aifv1.TrainingJobLabel: JobLabel(tj)}
}

// Service is the headless Service of the workers.
func Service(tj *aifv1.TrainingJob) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName(tj), Namespace: tj.Namespace, Labels: labels(tj), OwnerReferences: owner(tj)},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			Selector:                 labels(tj),
			PublishNotReadyAddresses: true,
		},
	}
}

// Job is the suspended Indexed Job of one attempt: one worker per node, queued in the tenant's LocalQueue. Kueue
// admits it as a whole, injects the GPU class's node selector and tolerations, and unsuspends it.
func Job(tj *aifv1.TrainingJob, in Input) *batchv1.Job {
	j := job(tj, in)
	j.Annotations = map[string]string{aifv1.ShapeAnnotation: Shape(tj, in)}
	return j
}

// Shape is a hash of what an attempt's Job is made of, apart from the attempt's number, restart count and the
// part of the run's bound left to it. A
// Job whose shape annotation differs was made for an earlier version of the run.
func Shape(tj *aifv1.TrainingJob, in Input) string {
	in.Attempt, in.Restarts, in.MaxExecSeconds = 0, 0, 0
	j := job(tj, in)
	return names.Hash(dump.ForHash(struct {
		Labels map[string]string
		Spec   batchv1.JobSpec
	}{j.Labels, j.Spec}))
}

func job(tj *aifv1.TrainingJob, in Input) *batchv1.Job {
	l := labels(tj)
	l[QueueLabel] = tj.Spec.QueueName
	if tj.Spec.PriorityClassName != "" {
		l[PriorityClassLabel] = tj.Spec.PriorityClassName
	}
	if in.MaxExecSeconds > 0 {
		l[MaxExecTimeLabel] = strconv.Itoa(int(in.MaxExecSeconds))
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: JobName(tj, in.Attempt), Namespace: tj.Namespace, Labels: l, OwnerReferences: owner(tj)},
		Spec: batchv1.JobSpec{
			Parallelism:    ptr.To(tj.Spec.Nodes),
			Completions:    ptr.To(tj.Spec.Nodes),
			CompletionMode: ptr.To(batchv1.IndexedCompletion),
			// A failed worker fails the attempt; the TrainingJob decides whether to start another.
			BackoffLimit: ptr.To[int32](0),
			Suspend:      ptr.To(true),
			Template:     podTemplate(tj, in),
		},
	}
}

func podTemplate(tj *aifv1.TrainingJob, in Input) corev1.PodTemplateSpec {
	t := *tj.Spec.Template.DeepCopy()
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	for k, v := range labels(tj) {
		t.Labels[k] = v
	}
	s := &t.Spec
	s.Subdomain = ServiceName(tj)
	s.RestartPolicy = corev1.RestartPolicyNever
	if in.Class != nil {
		if s.NodeSelector == nil {
			s.NodeSelector = map[string]string{}
		}
		for k, v := range in.Class.NodeLabels {
			s.NodeSelector[k] = v
		}
		s.Tolerations = append(s.Tolerations, in.Class.Tolerations...)
	}
	mounts := append([]Mount(nil), in.Datasets...)
	if in.Checkpoint != nil {
		mounts = append(mounts, *in.Checkpoint)
	}
	for _, m := range mounts {
		s.Volumes = append(s.Volumes, corev1.Volume{Name: volumeName(m.Name), VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: m.ClaimName, ReadOnly: m.ReadOnly},
		}})
	}
	restrictPod(s)
	for i := range s.Containers {
		c := &s.Containers[i]
		for _, m := range mounts {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: volumeName(m.Name), MountPath: m.MountPath, SubPath: m.SubPath, ReadOnly: m.ReadOnly})
		}
		c.Env = append(c.Env, workerEnv(tj, in)...)
		restrictContainer(c)
	}
	for i := range s.InitContainers {
		restrictContainer(&s.InitContainers[i])
	}
	if len(s.Containers) > 0 {
		requestGPUs(&s.Containers[0], corev1.ResourceName(tj.Spec.GPUResource), tj.Spec.GPUsPerNode)
	}
	return t
}

func volumeName(dataset string) string { return names.Short("dataset-"+dataset, 63) }

// requestGPUs gives the trainer container its GPUs as request and limit (extended resources need both equal).
func requestGPUs(c *corev1.Container, res corev1.ResourceName, n int32) {
	q := *resource.NewQuantity(int64(n), resource.DecimalSI)
	if c.Resources.Requests == nil {
		c.Resources.Requests = corev1.ResourceList{}
	}
	if c.Resources.Limits == nil {
		c.Resources.Limits = corev1.ResourceList{}
	}
	c.Resources.Requests[res], c.Resources.Limits[res] = q, q
}

// workerEnv is the torchrun environment: the PET_* variables torchrun reads, and the conventional ones.
func workerEnv(tj *aifv1.TrainingJob, in Input) []corev1.EnvVar {
	rank := corev1.EnvVar{ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: completionIndexPath}}}
	nodes, perNode := strconv.Itoa(int(tj.Spec.Nodes)), strconv.Itoa(int(tj.Spec.GPUsPerNode))
	master, port := MasterAddr(tj, in.Attempt), strconv.Itoa(MasterPort)
	env := []corev1.EnvVar{
		{Name: "PET_NNODES", Value: nodes},
		{Name: "PET_NPROC_PER_NODE", Value: perNode},
		withName(rank, "PET_NODE_RANK"),
		{Name: "PET_MASTER_ADDR", Value: master},
		{Name: "PET_MASTER_PORT", Value: port},
		{Name: "WORLD_SIZE", Value: strconv.Itoa(int(tj.Spec.Nodes * tj.Spec.GPUsPerNode))},
		withName(rank, "NODE_RANK"),
		{Name: "MASTER_ADDR", Value: master},
		{Name: "MASTER_PORT", Value: port},
		{Name: "AIFACTORY_RESTART_COUNT", Value: strconv.Itoa(int(in.Restarts))},
	}
	if in.Checkpoint != nil {
		env = append(env, corev1.EnvVar{Name: "CHECKPOINT_DIR", Value: in.Checkpoint.MountPath})
	}
	return env
}

func withName(e corev1.EnvVar, name string) corev1.EnvVar {
	e.Name = name
	return e
}

// restrictPod fills in the Pod Security "restricted" settings that the template leaves unset; what the template
// sets has passed the pod policy at admission (ValidateTrainingJob).
func restrictPod(s *corev1.PodSpec) {
	if s.SecurityContext == nil {
		s.SecurityContext = &corev1.PodSecurityContext{}
	}
	sc := s.SecurityContext
	if sc.RunAsNonRoot == nil {
		sc.RunAsNonRoot = ptr.To(true)
	}
	if sc.SeccompProfile == nil {
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	// The service account's token is mounted only where the template asks for it.
	if s.AutomountServiceAccountToken == nil {
		s.AutomountServiceAccountToken = ptr.To(false)
	}
}

// restrictContainer fills in the "restricted" container settings that the template leaves unset.
func restrictContainer(c *corev1.Container) {
	if c.SecurityContext == nil {
		c.SecurityContext = &corev1.SecurityContext{}
	}
	sc := c.SecurityContext
	if sc.AllowPrivilegeEscalation == nil {
		sc.AllowPrivilegeEscalation = ptr.To(false)
	}
	if sc.Capabilities == nil {
		sc.Capabilities = &corev1.Capabilities{}
	}
	if len(sc.Capabilities.Drop) == 0 {
		sc.Capabilities.Drop = []corev1.Capability{"ALL"}
	}
}
