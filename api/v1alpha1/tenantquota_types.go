package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BudgetPeriod is a calendar period in UTC over which a GPU-hour budget is counted.
// +kubebuilder:validation:Enum=Day;Week;Month;Quarter;Year
type BudgetPeriod string

const (
	// PeriodDay starts at 00:00 UTC each day.
	PeriodDay BudgetPeriod = "Day"
	// PeriodWeek starts at 00:00 UTC each Monday (ISO week).
	PeriodWeek BudgetPeriod = "Week"
	// PeriodMonth starts at 00:00 UTC on the first day of each month.
	PeriodMonth BudgetPeriod = "Month"
	// PeriodQuarter starts at 00:00 UTC on 1 January, 1 April, 1 July and 1 October.
	PeriodQuarter BudgetPeriod = "Quarter"
	// PeriodYear starts at 00:00 UTC on 1 January.
	PeriodYear BudgetPeriod = "Year"
)

// ExhaustedPolicy says what happens to a tenant's queue when its budget is spent.
// +kubebuilder:validation:Enum=Hold;HoldAndDrain
type ExhaustedPolicy string

const (
	// ExhaustedHold lets admitted work finish and admits nothing new.
	ExhaustedHold ExhaustedPolicy = "Hold"
	// ExhaustedHoldAndDrain also evicts admitted work.
	ExhaustedHoldAndDrain ExhaustedPolicy = "HoldAndDrain"
)

// TenantQuota condition types and reasons.
const (
	// ConditionBudgetExhausted is True while the tenant's GPU-hours for the current period are spent.
	ConditionBudgetExhausted = "BudgetExhausted"

	// ReasonClusterQueueActive means the tenant's ClusterQueue is active in Kueue.
	ReasonClusterQueueActive = "ClusterQueueActive"
	// ReasonClusterQueueInactive means Kueue reports the tenant's ClusterQueue as not active.
	ReasonClusterQueueInactive = "ClusterQueueInactive"
	// ReasonNamespaceMissing means a namespace listed in spec.namespaces does not exist yet.
	ReasonNamespaceMissing = "NamespaceMissing"
	// ReasonNamespaceInUse means a namespace removed from spec.namespaces still has queued or running work.
	ReasonNamespaceInUse = "NamespaceInUse"
	// ReasonGPUClassUnknown means a GPU class in spec.gpus is neither configured nor discovered.
	ReasonGPUClassUnknown = "GPUClassUnknown"
	// ReasonNamespaceConflict means a namespace is already claimed by another TenantQuota.
	ReasonNamespaceConflict = "NamespaceConflict"
	// ReasonBudgetHold, on Ready, means the tenant's queue is stopped on purpose because its budget is spent.
	ReasonBudgetHold = "BudgetHold"
	// ReasonWithinBudget means GPU-hours remain in the current period.
	ReasonWithinBudget = "WithinBudget"
	// ReasonBudgetExhausted means the GPU-hours of the current period are spent.
	ReasonBudgetExhausted = "BudgetExhausted"
	// ReasonNoBudget means the tenant has no GPU-hour budget (unlimited).
	ReasonNoBudget = "NoBudget"

	// BudgetCheckName is the Kueue AdmissionCheck on the ClusterQueue of every tenant with a budget: a workload
	// is admitted only once the operator found that its reservation fits the budget.
	BudgetCheckName = "aifactory-budget"
	// BudgetCheckController is the controllerName of the budget AdmissionCheck.
	BudgetCheckController = "aifactory.eu/budget"
	// BoundReachedAnnotation is set on a Kueue workload that the operator stopped because its admitted time
	// reached its run bound; its value is the bound in seconds.
	BoundReachedAnnotation = "aifactory.eu/run-bound-reached"

	// ConditionIsolated is True when Kueue gates a plain GPU Pod in each of the tenant's namespaces, as the
	// operator checks with a dry-run Pod; False names the namespaces where such a Pod would run past the
	// tenant's quota and budget.
	ConditionIsolated = "Isolated"
	// ReasonKueueGatesPods means a dry-run GPU Pod in each tenant namespace was gated by Kueue.
	ReasonKueueGatesPods = "KueueGatesPods"
	// ReasonPodsNotGated means Kueue left a dry-run GPU Pod ungated: Kueue is not configured as the operator
	// needs (docs/isolation.md).
	ReasonPodsNotGated = "PodsNotGated"
)

// TenantQuotaSpec declares a tenant: its namespaces, GPU quota per class, GPU-hour budget and storage roots.
// +kubebuilder:validation:XValidation:rule="has(self.cohort) || self.gpus.all(g, !has(g.borrowingLimit) && !has(g.lendingLimit))",message="borrowingLimit and lendingLimit need spec.cohort: without a cohort there is nobody to borrow from or lend to",fieldPath=".gpus"
type TenantQuotaSpec struct {
	// displayName is the tenant's name for people, such as the legal name of the organisation.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	DisplayName string `json:"displayName,omitempty"`

	// namespaces are the tenant's namespaces. Each gets a Kueue LocalQueue named "default" bound to the
	// tenant's ClusterQueue. The operator does not create namespaces: a missing one is reported in status and
	// picked up when it appears. A namespace belongs to at most one TenantQuota.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces"`

	// cohort is the Kueue cohort of the tenant's ClusterQueue. Tenants of one cohort lend idle GPUs to each
	// other and reclaim them when they need them.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Cohort string `json:"cohort,omitempty"`

	// gpus is the tenant's quota per GPU class. Each class is a Kueue ResourceFlavor.
	// +required
	// +listType=map
	// +listMapKey=gpuClass
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	GPUs []GPUQuota `json:"gpus"`

	// budget caps the GPU-hours the tenant may use per calendar period. Without a budget, use is unlimited.
	// +optional
	Budget *Budget `json:"budget,omitempty"`

	// fairSharingWeight is the tenant's weight in Kueue's fair sharing within the cohort. Default 1.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!string(self).startsWith('-')",message="must not be negative"
	FairSharingWeight *resource.Quantity `json:"fairSharingWeight,omitempty"`

	// storage lists the folders of the factory's filesystems that the tenant's DatasetMounts may point into.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Storage []StorageRoot `json:"storage,omitempty"`

	// dataClassifications are the data classes the tenant may mount. Default: public and internal.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4
	// +kubebuilder:default={public,internal}
	DataClassifications []DataClassification `json:"dataClassifications,omitempty"`

	// podPolicy grants this tenant's runs exceptions to the operator's pod policy, on top of those the operator
	// configuration grants every tenant. Only the platform team writes TenantQuotas, so only it grants them.
	// +optional
	PodPolicy *TenantPodPolicy `json:"podPolicy,omitempty"`
}

// PodSecurityLevel is a Pod Security Standards level.
// +kubebuilder:validation:Enum=restricted;baseline;privileged
type PodSecurityLevel string

const (
	// PodSecurityRestricted is the hardened profile, the default for tenant namespaces.
	PodSecurityRestricted PodSecurityLevel = "restricted"
	// PodSecurityBaseline forbids known privilege escalations but allows, for example, running as root.
	PodSecurityBaseline PodSecurityLevel = "baseline"
	// PodSecurityPrivileged puts no Pod Security restriction on the namespace; the operator's own pod policy still
	// applies to TrainingJobs, but plain pods in the namespace are then checked by nothing but their RBAC.
	PodSecurityPrivileged PodSecurityLevel = "privileged"
)

// TenantPodPolicy is what a tenant's TrainingJob templates may ask for beyond the operator's pod policy.
// +kubebuilder:validation:XValidation:rule="!has(self.allowedCapabilities) || (has(self.podSecurityLevel) && self.podSecurityLevel == 'privileged') || self.allowedCapabilities.all(c, c == 'NET_BIND_SERVICE' || (has(self.podSecurityLevel) && self.podSecurityLevel == 'baseline' && c in ['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']))",message="a capability beyond the Pod Security level's own set needs a podSecurityLevel that allows it: IPC_LOCK, for example, only passes Pod Security at privileged",fieldPath=".allowedCapabilities"
type TenantPodPolicy struct {
	// podSecurityLevel is the Pod Security level that the tenant's namespaces enforce (their
	// pod-security.kubernetes.io/enforce label) and that the pods of its TrainingJobs must pass. Default: the
	// operator configuration's level, restricted unless configured otherwise.
	// +optional
	PodSecurityLevel PodSecurityLevel `json:"podSecurityLevel,omitempty"`

	// allowedCapabilities are Linux capabilities (without CAP_) that the tenant's containers may add, such as
	// IPC_LOCK for RDMA over InfiniBand.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:items:Pattern=`^[A-Z][A-Z_]*$`
	AllowedCapabilities []string `json:"allowedCapabilities,omitempty"`

	// serviceAccounts are service accounts of the tenant's namespaces that its TrainingJobs may run as, besides
	// "default".
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`

	// storageClasses are the storage classes that generic ephemeral volumes of the tenant's TrainingJobs may use
	// (node-local scratch space, for example).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	StorageClasses []string `json:"storageClasses,omitempty"`

	// runtimeClasses are the RuntimeClasses that the tenant's TrainingJobs may name.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	RuntimeClasses []string `json:"runtimeClasses,omitempty"`
}

// GPUQuota is a tenant's quota of one GPU class.
// +kubebuilder:validation:XValidation:rule="!has(self.lendingLimit) || self.lendingLimit <= self.nominal",message="lendingLimit must not exceed nominal",fieldPath=".lendingLimit"
type GPUQuota struct {
	// gpuClass is the name of a GPU class from the operator configuration or discovery, such as h100-80gb.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	GPUClass string `json:"gpuClass"`

	// nominal is the number of GPUs (or MIG slices, for a MIG class) guaranteed to the tenant.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	Nominal int32 `json:"nominal"`

	// borrowingLimit is how many GPUs above nominal the tenant may borrow from its cohort. Unset: no limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	BorrowingLimit *int32 `json:"borrowingLimit,omitempty"`

	// lendingLimit is how many of the nominal GPUs the cohort may borrow while the tenant does not use them.
	// Unset: all of them.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	LendingLimit *int32 `json:"lendingLimit,omitempty"`
}

// Budget is a GPU-hour allocation per calendar period, as HPC centres allocate compute. It is reserved before
// admission: a run is admitted only if its GPUs times its run bound fit what is left of the period after the use
// so far and the reservations of running work.
// +kubebuilder:validation:XValidation:rule="!has(self.maxRunDuration) || !has(self.defaultMaxRunDuration) || duration(self.defaultMaxRunDuration) <= duration(self.maxRunDuration)",message="defaultMaxRunDuration must not exceed maxRunDuration",fieldPath=".defaultMaxRunDuration"
type Budget struct {
	// gpuHours is the number of GPU-hours the tenant may use per period. A MIG slice counts as one GPU.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000000
	GPUHours int64 `json:"gpuHours"`

	// period is the calendar period (UTC) over which use is counted.
	// +optional
	// +kubebuilder:default=Month
	Period BudgetPeriod `json:"period,omitempty"`

	// onExhausted says what happens when the budget is spent: Hold admits nothing new and lets admitted work
	// finish; HoldAndDrain also evicts admitted work. Admission resumes by itself in the next period or when the
	// budget is raised.
	// +optional
	// +kubebuilder:default=Hold
	OnExhausted ExhaustedPolicy `json:"onExhausted,omitempty"`

	// defaultMaxRunDuration is the run bound of the tenant's runs that set none: TrainingJobs without
	// spec.maxRunDuration and Kueue workloads without the kueue.x-k8s.io/max-exec-time-seconds label. A run is
	// stopped when its admitted time reaches its bound, and its reservation is its GPUs times its bound. Unset:
	// 24h, or maxRunDuration where that is shorter.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('8760h')",message="must be between 1s and 8760h"
	DefaultMaxRunDuration *metav1.Duration `json:"defaultMaxRunDuration,omitempty"`

	// maxRunDuration is the longest run bound the tenant's runs may have. A TrainingJob asking for more is
	// refused; a Kueue workload whose max-exec-time label asks for more is bounded by this. Unset: no maximum
	// beyond the run's own bound.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('8760h')",message="must be between 1s and 8760h"
	MaxRunDuration *metav1.Duration `json:"maxRunDuration,omitempty"`
}

// StorageRoot is a folder of a filesystem under which a tenant's datasets may lie.
type StorageRoot struct {
	// filesystem is the name of a filesystem in the operator configuration.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Filesystem string `json:"filesystem"`

	// path is an absolute, clean folder inside the filesystem, such as /medai.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:Pattern=`^/([^/\x00-\x1f%]+(/[^/\x00-\x1f%]+)*)?$`
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(s, s == '.' || s == '..')",message="must not contain '.' or '..' segments"
	Path string `json:"path"`

	// access says whether DatasetMounts under this root may be ReadWrite. Default ReadOnly.
	// +optional
	// +kubebuilder:default=ReadOnly
	Access Access `json:"access,omitempty"`

	// classification is the lowest data class of what lies under this root, set by the platform team: a
	// DatasetMount under it may not declare a lower one (public < internal < personal < health). Where roots
	// nest, the highest of them applies. Unset: the DatasetMount's own declaration stands.
	// +optional
	Classification DataClassification `json:"classification,omitempty"`
}

// TenantQuotaStatus is what the operator observed of the tenant.
type TenantQuotaStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (the tenant's Kueue objects exist and are active), BudgetExhausted, Isolated (Kueue gates
	// plain GPU Pods in the tenant's namespaces), and Reconciling and
	// Stalled for kstatus.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// clusterQueue is the name of the tenant's Kueue ClusterQueue.
	// +optional
	ClusterQueue string `json:"clusterQueue,omitempty"`

	// nominalGPUs is the sum of nominal GPUs over all classes.
	// +optional
	NominalGPUs int32 `json:"nominalGPUs,omitempty"`

	// admittedGPUs is the sum of GPUs held by admitted workloads over all classes.
	// +optional
	AdmittedGPUs int32 `json:"admittedGPUs,omitempty"`

	// gpus are the per-class figures mirrored from Kueue.
	// +optional
	// +listType=map
	// +listMapKey=gpuClass
	GPUs []GPUClassStatus `json:"gpus,omitempty"`

	// workloads counts the tenant's Kueue workloads.
	// +optional
	Workloads WorkloadCounts `json:"workloads,omitempty"`

	// namespaces lists the tenant's namespaces and whether each has its LocalQueue.
	// +optional
	// +listType=map
	// +listMapKey=name
	Namespaces []NamespaceStatus `json:"namespaces,omitempty"`

	// budget is the tenant's use in the current period and, with a budget, what remains of it.
	// +optional
	Budget *BudgetStatus `json:"budget,omitempty"`

	// ledger is the operator's durable record of the GPU-seconds of workloads deleted during the current
	// period, which the cluster no longer shows. It is written only by the operator.
	// +optional
	Ledger *Ledger `json:"ledger,omitempty"`
}

// Ledger records GPU-seconds that no object in the cluster shows any more.
type Ledger struct {
	// periodStart is the start of the period the ledger counts.
	PeriodStart metav1.Time `json:"periodStart"`
	// deletedGPUSeconds is the GPU-seconds, in this period, of the tenant's workloads that were deleted.
	DeletedGPUSeconds int64 `json:"deletedGPUSeconds"`
	// deletedWorkloads are the UIDs of deleted workloads already counted in deletedGPUSeconds whose objects
	// still exist; an entry is dropped once its workload is gone, so each workload is counted once.
	// +optional
	// +listType=set
	DeletedWorkloads []string `json:"deletedWorkloads,omitempty"`
}

// GPUClassStatus is a tenant's use of one GPU class.
type GPUClassStatus struct {
	// gpuClass is the class name.
	GPUClass string `json:"gpuClass"`
	// nominal is the guaranteed number of GPUs.
	Nominal int32 `json:"nominal"`
	// admitted is the number of GPUs held by admitted workloads.
	Admitted int32 `json:"admitted"`
	// borrowed is the number of admitted GPUs borrowed from the cohort.
	Borrowed int32 `json:"borrowed"`
}

// WorkloadCounts counts Kueue workloads.
type WorkloadCounts struct {
	// admitted is the number of admitted workloads.
	Admitted int32 `json:"admitted"`
	// pending is the number of workloads waiting for admission.
	Pending int32 `json:"pending"`
	// waiting are the oldest workloads waiting for admission, with Kueue's reason.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	Waiting []WaitingWorkload `json:"waiting,omitempty"`
}

// WaitingWorkload is a workload that Kueue has not admitted, and why.
type WaitingWorkload struct {
	// namespace of the workload.
	Namespace string `json:"namespace"`
	// name of the Kueue Workload.
	Name string `json:"name"`
	// message is Kueue's reason, such as "insufficient unused quota for nvidia.com/gpu in flavor h100-80gb, 8 more
	// needed".
	// +optional
	Message string `json:"message,omitempty"`
}

// NamespaceStatus is the state of one of the tenant's namespaces.
type NamespaceStatus struct {
	// name of the namespace.
	Name string `json:"name"`
	// exists is false while the namespace has not been created.
	Exists bool `json:"exists"`
	// localQueue is the name of the LocalQueue in the namespace, once created.
	// +optional
	LocalQueue string `json:"localQueue,omitempty"`
}

// BudgetStatus is the ledger's summary for the current period.
type BudgetStatus struct {
	// periodStart is the start of the current period (UTC).
	PeriodStart metav1.Time `json:"periodStart"`
	// periodEnd is the end of the current period (UTC), exclusive.
	PeriodEnd metav1.Time `json:"periodEnd"`
	// usedGPUSeconds is the exact use in the current period, in GPU-seconds.
	UsedGPUSeconds int64 `json:"usedGPUSeconds"`
	// usedGPUHours is usedGPUSeconds in GPU-hours, with two decimals, for people.
	UsedGPUHours string `json:"usedGPUHours"`
	// budgetGPUHours is the budget of the period; empty when the tenant has no budget.
	// +optional
	BudgetGPUHours string `json:"budgetGPUHours,omitempty"`
	// remainingGPUHours is what is left of the budget in GPU-hours, with two decimals, never negative; empty
	// when the tenant has no budget. Reservations are not subtracted: see reservedGPUHours.
	// +optional
	RemainingGPUHours string `json:"remainingGPUHours,omitempty"`
	// reservedGPUSeconds is what admitted work may still use before it reaches its run bound: for each admitted
	// workload, its GPUs times the part of its bound not yet used. New work is admitted only where its own
	// reservation fits the remaining budget less this.
	// +optional
	ReservedGPUSeconds int64 `json:"reservedGPUSeconds,omitempty"`
	// reservedGPUHours is reservedGPUSeconds in GPU-hours, with two decimals, rounded up.
	// +optional
	ReservedGPUHours string `json:"reservedGPUHours,omitempty"`
}

// TenantQuota declares a tenant of the AI factory: its namespaces, GPU quota, GPU-hour budget and storage.
// The operator turns it into a Kueue ClusterQueue with a LocalQueue per namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=tq,categories=aifactory
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 56",message="metadata.name must be a DNS label of at most 56 characters: it names the tenant's ClusterQueue and labels"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Admitted",type=integer,JSONPath=`.status.admittedGPUs`,description="GPUs held by admitted workloads"
// +kubebuilder:printcolumn:name="Nominal",type=integer,JSONPath=`.status.nominalGPUs`,description="Guaranteed GPUs over all classes"
// +kubebuilder:printcolumn:name="Used GPU-h",type=string,JSONPath=`.status.budget.usedGPUHours`
// +kubebuilder:printcolumn:name="Remaining GPU-h",type=string,JSONPath=`.status.budget.remainingGPUHours`
// +kubebuilder:printcolumn:name="Reserved GPU-h",type=string,JSONPath=`.status.budget.reservedGPUHours`
// +kubebuilder:printcolumn:name="Cohort",type=string,JSONPath=`.spec.cohort`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TenantQuota struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the tenant as declared by the platform team.
	// +required
	Spec TenantQuotaSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status TenantQuotaStatus `json:"status,omitempty"`
}

// TenantQuotaList is a list of TenantQuotas.
// +kubebuilder:object:root=true
type TenantQuotaList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TenantQuota `json:"items"`
}
