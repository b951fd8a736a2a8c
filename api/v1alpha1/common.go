package v1alpha1

// Labels, annotations and finalizers that the operator sets or reads.
const (
	// TenantLabel names the TenantQuota that owns a Kueue object or a namespace-level child.
	TenantLabel = "aifactory.eu/tenant"
	// TrainingJobLabel names the TrainingJob that a Job, Service or pod belongs to.
	TrainingJobLabel = "aifactory.eu/trainingjob"
	// DatasetMountLabel names the DatasetMount that a verification pod belongs to.
	DatasetMountLabel = "aifactory.eu/datasetmount"
	// ManagedByLabel marks every object the operator creates, so that its caches watch only those.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel on objects the operator creates.
	ManagedByValue = "aifactory-operator"

	// SimulatedRuntimeAnnotation, on a TrainingJob's pod template, tells the local simulated factory how long a
	// worker runs (a Go duration such as "20s"). Simulation only: real clusters ignore it.
	SimulatedRuntimeAnnotation = "aifactory.eu/simulated-runtime"
	// SimulatedResultAnnotation, on a TrainingJob's pod template, set to "Failed" makes simulated workers fail
	// in the local factory. Simulation only: real clusters ignore it.
	SimulatedResultAnnotation = "aifactory.eu/simulated-result"

	// ShapeAnnotation, on a TrainingJob's Job, is a hash of the Job the run asked for when it was created. A
	// queued run whose shape changed gets a new Job.
	ShapeAnnotation = "aifactory.eu/shape"

	// DeactivatedAnnotation, on a Kueue workload, records that the operator set spec.active to false (the value
	// says why: Suspended or DeadlineExceeded). The operator reactivates only workloads it deactivated itself.
	DeactivatedAnnotation = "aifactory.eu/deactivated"

	// InUseFinalizer keeps a DatasetMount while an unfinished TrainingJob uses it.
	InUseFinalizer = "aifactory.eu/in-use-protection"
	// CleanupFinalizer lets the operator release Kueue objects of a TenantQuota once its work has finished.
	CleanupFinalizer = "aifactory.eu/cleanup"
)

// Access says whether data is mounted read-only or read-write.
// +kubebuilder:validation:Enum=ReadOnly;ReadWrite
type Access string

const (
	// ReadOnly data is mounted read-only.
	ReadOnly Access = "ReadOnly"
	// ReadWrite data may be written (checkpoints, outputs).
	ReadWrite Access = "ReadWrite"
)

// DataClassification is the sensitivity class of a dataset.
// +kubebuilder:validation:Enum=public;internal;personal;health
type DataClassification string

const (
	// ClassificationPublic is openly available data.
	ClassificationPublic DataClassification = "public"
	// ClassificationInternal is data of the tenant that is not personal.
	ClassificationInternal DataClassification = "internal"
	// ClassificationPersonal is personal data in the sense of the GDPR.
	ClassificationPersonal DataClassification = "personal"
	// ClassificationHealth is health data, a special category of personal data.
	ClassificationHealth DataClassification = "health"
)

// Classifications are the data classes from the least to the most sensitive.
var Classifications = []DataClassification{ClassificationPublic, ClassificationInternal, ClassificationPersonal, ClassificationHealth}

// Condition types and reasons shared by the kinds. Kind-specific ones live beside each kind.
const (
	// ConditionReady is True when the object's children exist and are usable.
	ConditionReady = "Ready"

	// ReasonReconciling means the operator has not yet finished a first pass over the object.
	ReasonReconciling = "Reconciling"
	// ReasonTerminating means the object is being deleted.
	ReasonTerminating = "Terminating"
	// ReasonWriteFailed means a write the operator makes for the object failed; the message names the write
	// ("create ClusterQueue tenant-a") and gives the API server's answer. The write is retried with backoff.
	ReasonWriteFailed = "WriteFailed"
)
