// Package v1alpha1 is the operator's configuration file format, config.aifactory.eu/v1alpha1 Configuration:
// the factory's filesystems and GPU classes, GPU class discovery and the default queue.
//
// +kubebuilder:object:generate=true
// +groupName=config.aifactory.eu
package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kind and APIVersion of the configuration file.
const (
	Kind       = "Configuration"
	APIVersion = "config.aifactory.eu/v1alpha1"

	// PathPlaceholder in a CSI volumeHandle or volume attribute is replaced by the dataset's path.
	PathPlaceholder = "{path}"

	// DefaultGPUResource is the extended resource of the NVIDIA device plugin.
	DefaultGPUResource = "nvidia.com/gpu"
	// DefaultGPUTaintKey is the taint that GPU nodes usually carry and that GPU classes tolerate.
	DefaultGPUTaintKey = "nvidia.com/gpu"
	// DefaultQueueName is the LocalQueue created in each tenant namespace.
	DefaultQueueName = "default"
)

// Configuration is the operator's configuration file.
type Configuration struct {
	metav1.TypeMeta `json:",inline"`

	// filesystems are the parallel filesystems that DatasetMounts may name.
	// +optional
	Filesystems []Filesystem `json:"filesystems,omitempty"`

	// gpuClasses are the GPU classes that TenantQuotas may name, each a Kueue ResourceFlavor.
	// +optional
	GPUClasses []GPUClass `json:"gpuClasses,omitempty"`

	// discovery adds GPU classes found on nodes to the configured ones.
	// +optional
	Discovery Discovery `json:"discovery,omitempty"`

	// defaultQueueName is the name of the LocalQueue created in each tenant namespace. Default "default".
	// +optional
	DefaultQueueName string `json:"defaultQueueName,omitempty"`

	// verification configures the Jobs that compute dataset manifest digests.
	// +optional
	Verification Verification `json:"verification,omitempty"`

	// podPolicy is what the pods of every tenant's TrainingJobs may ask for beyond the operator's floor; a
	// TenantQuota's spec.podPolicy adds to it for one tenant.
	// +optional
	PodPolicy PodPolicy `json:"podPolicy,omitempty"`
}

// Pod Security levels of PodPolicy.PodSecurityLevel.
const (
	PodSecurityRestricted = "restricted"
	PodSecurityBaseline   = "baseline"
	PodSecurityPrivileged = "privileged"
)

// BaselineCapabilities are the capabilities that Pod Security "baseline" lets a container add; "restricted" lets
// it add NET_BIND_SERVICE only. The schema rule of TenantQuota's podPolicy repeats this list.
var BaselineCapabilities = []string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}

// PodPolicy is the part of the TrainingJob pod policy that the platform team sets for every tenant.
type PodPolicy struct {
	// podSecurityLevel is the Pod Security level (restricted, baseline or privileged) that tenant namespaces
	// enforce and that TrainingJob pods must pass, unless a TenantQuota sets its own. Default restricted.
	// +optional
	PodSecurityLevel string `json:"podSecurityLevel,omitempty"`

	// allowedCapabilities are Linux capabilities (without CAP_) that containers of every tenant may add.
	// +optional
	AllowedCapabilities []string `json:"allowedCapabilities,omitempty"`

	// serviceAccounts are service accounts that TrainingJobs of every tenant may run as, besides "default".
	// +optional
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`

	// storageClasses are the storage classes that generic ephemeral volumes of every tenant may use.
	// +optional
	StorageClasses []string `json:"storageClasses,omitempty"`

	// runtimeClasses are the RuntimeClasses that TrainingJobs of every tenant may name, such as nvidia where the
	// NVIDIA container runtime is not the node's default. A RuntimeClass adds its own tolerations and node
	// selector to the pods, so grant only classes whose scheduling the platform controls.
	// +optional
	RuntimeClasses []string `json:"runtimeClasses,omitempty"`
}

// Filesystem is a parallel filesystem of the factory. Exactly one of csi and hostPath is set.
type Filesystem struct {
	// name is what DatasetMounts and TenantQuota storage roots refer to, such as lustre-datasets.
	Name string `json:"name"`

	// type is informational: Lustre, GPFS, BeeGFS or Other.
	// +optional
	Type string `json:"type,omitempty"`

	// csi mounts datasets through a CSI driver.
	// +optional
	CSI *CSIFilesystem `json:"csi,omitempty"`

	// hostPath mounts datasets from a folder that is mounted on every GPU node. Only a platform admin can
	// configure it, since it makes the operator create hostPath volumes.
	// +optional
	HostPath *HostPathFilesystem `json:"hostPath,omitempty"`

	// operatorMountPath is the folder where the operator's own container sees this filesystem's root
	// (read-only is enough). The operator resolves every dataset path there, refusing symbolic links, before
	// it admits a DatasetMount, before it makes its volume, and before each attempt of a run. Required for CSI
	// filesystems; for hostPath ones the default is hostPath.root.
	// +optional
	OperatorMountPath string `json:"operatorMountPath,omitempty"`
}

// CSIFilesystem is a filesystem reached through a CSI driver.
type CSIFilesystem struct {
	// driver is the CSI driver name, such as lustre.csi.hpe.com.
	Driver string `json:"driver"`

	// volumeHandle is the PersistentVolume's volumeHandle; "{path}" is replaced by the dataset path. It must be
	// unique per dataset unless the driver accepts shared handles: include {path} when in doubt.
	VolumeHandle string `json:"volumeHandle"`

	// volumeAttributes are passed to the driver; "{path}" in a value is replaced by the dataset path.
	// +optional
	VolumeAttributes map[string]string `json:"volumeAttributes,omitempty"`

	// mountOptions are set on the PersistentVolume.
	// +optional
	MountOptions []string `json:"mountOptions,omitempty"`

	// fsType is the PersistentVolume's fsType, where the driver needs one.
	// +optional
	FSType string `json:"fsType,omitempty"`

	// wholeFilesystem is true for drivers that mount the whole filesystem whatever the handle: the dataset
	// path then becomes the volume mount's subPath in the pods.
	// +optional
	WholeFilesystem bool `json:"wholeFilesystem,omitempty"`

	// pathCharacters are the characters other than ASCII letters and digits that a dataset path may contain
	// where {path} enters volumeHandle or volumeAttributes. Default "/-._+": a DatasetMount whose path has any
	// other character (such as ';' or ',', which separate the fields of some drivers' handles) is refused,
	// naming the character.
	// +optional
	PathCharacters string `json:"pathCharacters,omitempty"`
}

// HostPathFilesystem is a filesystem mounted at the same folder on every GPU node.
type HostPathFilesystem struct {
	// root is the folder on the nodes where the filesystem is mounted, such as /lustre/datasets.
	Root string `json:"root"`
}

// GPUClass is a kind of GPU (or MIG slice) that tenants get quota of.
type GPUClass struct {
	// name of the class, which becomes the Kueue ResourceFlavor name, such as h100-80gb.
	Name string `json:"name"`

	// resource is the extended resource of the class. Default nvidia.com/gpu.
	// +optional
	Resource corev1.ResourceName `json:"resource,omitempty"`

	// nodeLabels select the nodes of the class, such as nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3.
	NodeLabels map[string]string `json:"nodeLabels"`

	// tolerations are injected into admitted pods. Default: tolerate the nvidia.com/gpu taint.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// powerWatts is the power of one GPU (or slice) used to estimate energy where it is not measured.
	// +optional
	PowerWatts int32 `json:"powerWatts,omitempty"`
}

// Discovery finds GPU classes from the labels that GPU Feature Discovery puts on nodes.
type Discovery struct {
	// enabled turns discovery on.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// defaultPowerWatts is the power per GPU assumed for discovered classes. Default 700.
	// +optional
	DefaultPowerWatts int32 `json:"defaultPowerWatts,omitempty"`
}

// Verification configures dataset verification Jobs.
type Verification struct {
	// image is the operator's own image, which runs the verification subcommand.
	// +optional
	Image string `json:"image,omitempty"`

	// nodeSelector places verification pods on nodes where the filesystems are mounted. Default: the nodes of
	// any GPU class (the configured classes' node labels, one of them suffices).
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations of verification pods. Default: the tolerations of every configured GPU class.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// runAsUser and runAsGroup are the identity that reads the data; give it read access to the tenants'
	// datasets (and nothing else). Default 65532 for both.
	// +optional
	RunAsUser *int64 `json:"runAsUser,omitempty"`
	// +optional
	RunAsGroup *int64 `json:"runAsGroup,omitempty"`

	// deadlineSeconds bounds a verification, waiting for a node included; after it the DatasetMount is
	// Stalled with the reason. Default 21600 (6 hours).
	// +optional
	DeadlineSeconds *int64 `json:"deadlineSeconds,omitempty"`
}

// Defaults of Verification.
const (
	DefaultVerificationUID             int64 = 65532
	DefaultVerificationDeadlineSeconds int64 = 21600
	// DefaultPathCharacters are the characters besides ASCII letters and digits that a path entering a CSI
	// handle may contain.
	DefaultPathCharacters = "/-._+"
)
