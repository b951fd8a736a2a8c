package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrainingJobPhase is a one-word summary of a TrainingJob for people. Automation reads the conditions.
// +kubebuilder:validation:Enum=Pending;Queued;Admitted;Running;Restarting;Succeeded;Failed;Suspended
type TrainingJobPhase string

const (
	// PhasePending: not yet accepted (a dataset is not ready, the queue is missing, ...).
	PhasePending TrainingJobPhase = "Pending"
	// PhaseQueued: waiting in Kueue for quota.
	PhaseQueued TrainingJobPhase = "Queued"
	// PhaseAdmitted: Kueue admitted the run; workers are starting.
	PhaseAdmitted TrainingJobPhase = "Admitted"
	// PhaseRunning: all workers run.
	PhaseRunning TrainingJobPhase = "Running"
	// PhaseRestarting: an attempt failed and a new one is being started.
	PhaseRestarting TrainingJobPhase = "Restarting"
	// PhaseSucceeded: the run completed.
	PhaseSucceeded TrainingJobPhase = "Succeeded"
	// PhaseFailed: the run failed and will not be restarted.
	PhaseFailed TrainingJobPhase = "Failed"
	// PhaseSuspended: spec.suspend is true.
	PhaseSuspended TrainingJobPhase = "Suspended"
)

// TrainingJob condition types and reasons.
const (
	// ConditionAccepted is True once the job's references check out and it has been handed to Kueue.
	ConditionAccepted = "Accepted"
	// ConditionAdmitted is True while Kueue has admitted the current attempt.
	ConditionAdmitted = "Admitted"
	// ConditionRunning is True while all workers of the current attempt run.
	ConditionRunning = "Running"
	// ConditionSucceeded is True once the run completed.
	ConditionSucceeded = "Succeeded"
	// ConditionFailed is True once the run failed for good.
	ConditionFailed = "Failed"
	// ConditionReconciling is the kstatus condition: True while the operator is still driving the job.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is the kstatus condition: True when the job cannot progress without a change.
	ConditionStalled = "Stalled"

	// ReasonQueueNotFound means spec.queueName names no LocalQueue in the namespace.
	ReasonQueueNotFound = "QueueNotFound"
	// ReasonDatasetNotReady means a referenced DatasetMount is missing or not Ready.
	ReasonDatasetNotReady = "DatasetNotReady"
	// ReasonDatasetRevoked means a referenced DatasetMount is no longer permitted to the tenant (its root, its
	// class or its namespace's tenant changed, or its path became unsafe); a queued Job of the run is withdrawn.
	ReasonDatasetRevoked = "DatasetRevoked"
	// ReasonDatasetNotVerified means a referenced DatasetMount asks for verification that has not succeeded.
	ReasonDatasetNotVerified = "DatasetNotVerified"
	// ReasonCheckpointNotWritable means the checkpoint DatasetMount is not ReadWrite.
	ReasonCheckpointNotWritable = "CheckpointNotWritable"
	// ReasonAccepted means the job was handed to Kueue.
	ReasonAccepted = "Accepted"
	// ReasonPending means Kueue has not admitted the job; the message is Kueue's.
	ReasonPending = "Pending"
	// ReasonAdmitted means Kueue admitted the job.
	ReasonAdmitted = "Admitted"
	// ReasonEvicted means Kueue evicted the job; the message is Kueue's.
	ReasonEvicted = "Evicted"
	// ReasonPreempted means Kueue preempted the job for other work.
	ReasonPreempted = "Preempted"
	// ReasonWorkersStarting means not all workers run yet.
	ReasonWorkersStarting = "WorkersStarting"
	// ReasonWorkersRunning means all workers run.
	ReasonWorkersRunning = "WorkersRunning"
	// ReasonCompleted means every worker finished successfully.
	ReasonCompleted = "Completed"
	// ReasonWorkerFailed means a worker failed.
	ReasonWorkerFailed = "WorkerFailed"
	// ReasonRestartsExhausted means a worker failed after maxRestarts restarts.
	ReasonRestartsExhausted = "RestartsExhausted"
	// ReasonDeadlineExceeded means the run exceeded maxRunDuration.
	ReasonDeadlineExceeded = "DeadlineExceeded"
	// ReasonSuspended means spec.suspend is true.
	ReasonSuspended = "Suspended"
	// ReasonWaitingForBudget means Kueue reserved quota for the run, and the operator's budget check holds its
	// admission until the run's reservation (its GPUs times its run bound) fits the tenant's GPU-hour budget; the
	// message has the figures.
	ReasonWaitingForBudget = "WaitingForBudget"
	// ReasonChildRefused means the API server refused an object the operator writes for the run (its Service or
	// Job); the message is the API server's. The write is retried with backoff, and at once when the spec changes.
	ReasonChildRefused = "ChildRefused"
)

// TrainingJobSpec is a multi-node GPU training run.
type TrainingJobSpec struct {
	// queueName is the Kueue LocalQueue in this namespace. Default "default".
	// +optional
	// +kubebuilder:default=default
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	QueueName string `json:"queueName,omitempty"`

	// priorityClassName is a Kueue WorkloadPriorityClass. Higher priority work may preempt lower priority work
	// of the same tenant.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// suspend stops the run (its workers are removed and its quota released) while true; setting it back to
	// false queues the run again.
	// +optional
	// +kubebuilder:default=false
	Suspend bool `json:"suspend,omitempty"`

	// nodes is the number of worker pods, one per node.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	Nodes int32 `json:"nodes"`

	// gpusPerNode is the number of GPUs (or MIG slices) each worker requests. Default 8.
	// +optional
	// +kubebuilder:default=8
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	GPUsPerNode int32 `json:"gpusPerNode,omitempty"`

	// gpuClass pins the run to one GPU class. Unset: any class that the queue offers for gpuResource.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	GPUClass string `json:"gpuClass,omitempty"`

	// gpuResource is the extended resource each worker requests: nvidia.com/gpu (default) or a MIG resource
	// such as nvidia.com/mig-1g.10gb.
	// +optional
	// +kubebuilder:default="nvidia.com/gpu"
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	GPUResource string `json:"gpuResource,omitempty"`

	// template is the worker pod. The operator adds the GPU request and limit, the GPU class's node selector and
	// tolerations, the dataset and checkpoint volumes, the torchrun environment, and restricted security
	// settings where the template leaves them unset. The template must keep to the tenant's pod policy (see
	// docs/isolation.md): no host namespaces, privilege, root, host folders or claims, node names, pod priority
	// classes, foreign tolerations or service accounts, and GPUs only through gpusPerNode.
	// +required
	// +kubebuilder:validation:XValidation:rule="size(self.spec.containers) >= 1",message="needs at least one container",fieldPath=".spec.containers"
	Template corev1.PodTemplateSpec `json:"template"`

	// datasets are DatasetMounts of this namespace, mounted read-only into every worker.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b.mountPath == a.mountPath))",message="mountPath must be unique"
	Datasets []DatasetRef `json:"datasets,omitempty"`

	// checkpoint is a ReadWrite DatasetMount mounted read-write; its mount path is passed as CHECKPOINT_DIR so
	// that restarts resume from it.
	// +optional
	Checkpoint *CheckpointRef `json:"checkpoint,omitempty"`

	// maxRestarts is how many times the whole run is started again after a worker fails. Default 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxRestarts int32 `json:"maxRestarts,omitempty"`

	// maxRunDuration bounds the run's running time, summed over attempts; the run fails when it is exceeded.
	// Unset: the tenant's budget.defaultMaxRunDuration where the tenant has a budget, else no bound. It may not
	// exceed the tenant's budget.maxRunDuration. With a budget, the run's GPUs times its bound are reserved
	// before it is admitted.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be positive"
	MaxRunDuration *metav1.Duration `json:"maxRunDuration,omitempty"`
}

// DatasetRef mounts a DatasetMount of the same namespace.
type DatasetRef struct {
	// name of the DatasetMount: a DNS label, since it also names the workers' volume.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// mountPath is the absolute folder in the worker containers where the dataset appears.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/([^/\x00-\x1f%]+(/[^/\x00-\x1f%]+)*)?$`
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(s, s == '.' || s == '..')",message="must not contain '.' or '..' segments"
	// +kubebuilder:validation:XValidation:rule="self != '/'",message="must not be the root folder"
	MountPath string `json:"mountPath"`
}

// CheckpointRef mounts a ReadWrite DatasetMount for checkpoints.
type CheckpointRef struct {
	// datasetMount is the name of a ReadWrite DatasetMount in this namespace: a DNS label, since it also names
	// the workers' volume.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	DatasetMount string `json:"datasetMount"`

	// mountPath is the absolute folder in the worker containers; it is also CHECKPOINT_DIR.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/([^/\x00-\x1f%]+(/[^/\x00-\x1f%]+)*)?$`
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(s, s == '.' || s == '..')",message="must not contain '.' or '..' segments"
	// +kubebuilder:validation:XValidation:rule="self != '/'",message="must not be the root folder"
	MountPath string `json:"mountPath"`
}

// TrainingJobStatus is what the operator observed of the run.
type TrainingJobStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is a one-word summary for people; automation reads the conditions.
	// +optional
	Phase TrainingJobPhase `json:"phase,omitempty"`

	// reason is a CamelCase word saying why the run is in its phase (why it waits, why it failed).
	// +optional
	Reason string `json:"reason,omitempty"`

	// message explains reason in a sentence, with Kueue's figures where it waits for quota.
	// +optional
	Message string `json:"message,omitempty"`

	// gpus is the run's total GPU count: nodes times gpusPerNode.
	// +optional
	GPUs int32 `json:"gpus,omitempty"`

	// conditions: Accepted, Admitted, Running, Succeeded, Failed, and Reconciling and Stalled for kstatus.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// queue is where the current attempt waits or runs, in Kueue's terms.
	// +optional
	Queue *QueueStatus `json:"queue,omitempty"`

	// admission is what Kueue granted the current attempt.
	// +optional
	Admission *AdmissionStatus `json:"admission,omitempty"`

	// restarts is the number of times the run was started again after a failure.
	// +optional
	Restarts int32 `json:"restarts,omitempty"`

	// startTime is when the first attempt was admitted.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the run succeeded or failed for good.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// usage is the compute the run used, over all attempts.
	// +optional
	Usage *Usage `json:"usage,omitempty"`

	// record is the evidence of what the run used; it is frozen when the run ends.
	// +optional
	Record *RunRecord `json:"record,omitempty"`
}

// QueueStatus is where a run waits or runs in Kueue.
type QueueStatus struct {
	// localQueue is the LocalQueue the run was submitted to.
	// +optional
	LocalQueue string `json:"localQueue,omitempty"`
	// clusterQueue is the tenant's ClusterQueue.
	// +optional
	ClusterQueue string `json:"clusterQueue,omitempty"`
	// workload is the name of the Kueue Workload of the current attempt.
	// +optional
	Workload string `json:"workload,omitempty"`
	// reason is Kueue's reason for the workload's state.
	// +optional
	Reason string `json:"reason,omitempty"`
	// message is Kueue's message, such as "insufficient unused quota for nvidia.com/gpu in flavor h100-80gb, 8
	// more needed".
	// +optional
	Message string `json:"message,omitempty"`
}

// AdmissionStatus is what Kueue granted.
type AdmissionStatus struct {
	// gpuClass is the GPU class (Kueue ResourceFlavor) that Kueue assigned.
	// +optional
	GPUClass string `json:"gpuClass,omitempty"`
	// gpus is the number of GPUs admitted.
	// +optional
	GPUs int32 `json:"gpus,omitempty"`
	// nodes are the nodes the workers were placed on, in worker order.
	// +optional
	// +listType=atomic
	Nodes []string `json:"nodes,omitempty"`
}

// Usage is compute used.
type Usage struct {
	// gpuSeconds is admitted GPUs times the time from admission to end, summed over attempts.
	GPUSeconds int64 `json:"gpuSeconds"`
	// energyJoules is estimated from the GPU class's power where not measured.
	// +optional
	EnergyJoules int64 `json:"energyJoules,omitempty"`
	// attempts is the use of each attempt, oldest first.
	// +optional
	// +listType=atomic
	Attempts []AttemptUsage `json:"attempts,omitempty"`
}

// AttemptUsage is the compute of one attempt.
type AttemptUsage struct {
	// attempt numbers the attempt from 0. A new attempt starts after a worker failure (a restart) or when a
	// queued or suspended run was changed and is queued again.
	Attempt int32 `json:"attempt"`
	// gpus is the number of GPUs the attempt holds while admitted.
	// +optional
	GPUs int32 `json:"gpus,omitempty"`
	// gpuClass is the GPU class Kueue assigned to the attempt.
	// +optional
	GPUClass string `json:"gpuClass,omitempty"`
	// gpuSeconds is admitted GPUs times the attempt's admitted time. While the attempt runs, it counts the
	// admissions that have ended (an attempt can be preempted and admitted again); the running admission is
	// added when it ends.
	GPUSeconds int64 `json:"gpuSeconds"`
	// admittedAt is when Kueue admitted the attempt.
	// +optional
	AdmittedAt *metav1.Time `json:"admittedAt,omitempty"`
	// endedAt is when the attempt ended.
	// +optional
	EndedAt *metav1.Time `json:"endedAt,omitempty"`
}

// RunRecord is the evidence of what a run used.
type RunRecord struct {
	// images are the container images, by digest where the runtime reported one, else by reference.
	// +optional
	// +listType=atomic
	Images []string `json:"images,omitempty"`
	// datasets are the data the run read and wrote.
	// +optional
	// +listType=atomic
	Datasets []DatasetRecord `json:"datasets,omitempty"`
	// gpuClass is the GPU class the run used.
	// +optional
	GPUClass string `json:"gpuClass,omitempty"`
	// gpus is the number of GPUs the run used.
	// +optional
	GPUs int32 `json:"gpus,omitempty"`
	// nodes are the nodes the workers ran on.
	// +optional
	// +listType=atomic
	Nodes []string `json:"nodes,omitempty"`
	// startTime is when the run was first admitted.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// completionTime is when the run ended.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// result is Succeeded or Failed once the run has ended.
	// +optional
	Result TrainingJobPhase `json:"result,omitempty"`
}

// DatasetRecord is one dataset in a run record.
type DatasetRecord struct {
	// name of the DatasetMount.
	Name string `json:"name"`
	// filesystem the data lives on.
	Filesystem string `json:"filesystem"`
	// path inside the filesystem.
	Path string `json:"path"`
	// access the run had.
	// +optional
	Access Access `json:"access,omitempty"`
	// version as declared on the DatasetMount.
	// +optional
	Version string `json:"version,omitempty"`
	// manifestDigest is the DatasetMount's verified digest, where verified.
	// +optional
	ManifestDigest string `json:"manifestDigest,omitempty"`
}

// TrainingJob is a multi-node GPU training run: queued and gang-admitted by Kueue within the tenant's quota,
// with its datasets mounted read-only, its use booked to the tenant's budget, and a record of what it used.
//
// The shape of the run (nodes, GPUs, class, resource, template, datasets, checkpoint) cannot change while it
// is admitted or running: suspend it first.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tj,categories=aifactory
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63",message="metadata.name must be a DNS label of at most 63 characters that starts with a letter: it names the run's headless Service and its workers' host names"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.phase) || !(oldSelf.status.phase in ['Admitted', 'Running', 'Restarting']) || self.spec.nodes == oldSelf.spec.nodes",message="cannot change while the run is admitted or running; suspend it first",fieldPath=".spec.nodes"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.phase) || !(oldSelf.status.phase in ['Admitted', 'Running', 'Restarting']) || self.spec.gpusPerNode == oldSelf.spec.gpusPerNode",message="cannot change while the run is admitted or running; suspend it first",fieldPath=".spec.gpusPerNode"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.phase) || !(oldSelf.status.phase in ['Admitted', 'Running', 'Restarting']) || (has(self.spec.gpuClass) == has(oldSelf.spec.gpuClass) && (!has(self.spec.gpuClass) || self.spec.gpuClass == oldSelf.spec.gpuClass))",message="cannot change while the run is admitted or running; suspend it first",fieldPath=".spec.gpuClass"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.phase) || !(oldSelf.status.phase in ['Admitted', 'Running', 'Restarting']) || self.spec.gpuResource == oldSelf.spec.gpuResource",message="cannot change while the run is admitted or running; suspend it first",fieldPath=".spec.gpuResource"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.phase) || !(oldSelf.status.phase in ['Admitted', 'Running', 'Restarting']) || self.spec.template == oldSelf.spec.template",message="cannot change while the run is admitted or running; suspend it first",fieldPath=".spec.template"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.phase) || !(oldSelf.status.phase in ['Admitted', 'Running', 'Restarting']) || (has(self.spec.datasets) == has(oldSelf.spec.datasets) && (!has(self.spec.datasets) || self.spec.datasets == oldSelf.spec.datasets))",message="cannot change while the run is admitted or running; suspend it first",fieldPath=".spec.datasets"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.phase) || !(oldSelf.status.phase in ['Admitted', 'Running', 'Restarting']) || (has(self.spec.checkpoint) == has(oldSelf.spec.checkpoint) && (!has(self.spec.checkpoint) || self.spec.checkpoint == oldSelf.spec.checkpoint))",message="cannot change while the run is admitted or running; suspend it first",fieldPath=".spec.checkpoint"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="GPUs",type=integer,JSONPath=`.status.gpus`
// +kubebuilder:printcolumn:name="Class",type=string,JSONPath=`.status.admission.gpuClass`,description="GPU class Kueue assigned"
// +kubebuilder:printcolumn:name="Queue",type=string,JSONPath=`.spec.queueName`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
// +kubebuilder:printcolumn:name="Restarts",type=integer,JSONPath=`.status.restarts`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrainingJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the run as declared by the tenant engineer.
	// +required
	Spec TrainingJobSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status TrainingJobStatus `json:"status,omitempty"`
}

// TrainingJobList is a list of TrainingJobs.
// +kubebuilder:object:root=true
type TrainingJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrainingJob `json:"items"`
}
