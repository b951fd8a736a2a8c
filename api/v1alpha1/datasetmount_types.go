package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VerificationMode says how a dataset is fingerprinted.
// +kubebuilder:validation:Enum=None;Metadata;Content
type VerificationMode string

const (
	// VerificationNone skips verification.
	VerificationNone VerificationMode = "None"
	// VerificationMetadata digests relative paths, sizes and modification times.
	VerificationMetadata VerificationMode = "Metadata"
	// VerificationContent digests relative paths, sizes and the sha256 of every file's content.
	VerificationContent VerificationMode = "Content"
)

// DatasetMount condition types and reasons.
const (
	// ConditionVerified is True once the dataset's manifest digest has been computed.
	ConditionVerified = "Verified"

	// ReasonClaimBound means the claim is bound to the dataset's PersistentVolume.
	ReasonClaimBound = "ClaimBound"
	// ReasonClaimConflict means a claim of the dataset's claim name exists that the operator did not make for this
	// DatasetMount; no volume is made until it is deleted.
	ReasonClaimConflict = "ClaimConflict"
	// ReasonClaimPending means the claim is not bound yet.
	ReasonClaimPending = "ClaimPending"
	// ReasonFilesystemUnknown means spec.filesystem is not in the operator configuration.
	ReasonFilesystemUnknown = "FilesystemUnknown"
	// ReasonNotPermitted means the tenant may not use the path, access or classification.
	ReasonNotPermitted = "NotPermitted"
	// ReasonNoTenant means the namespace belongs to no TenantQuota.
	ReasonNoTenant = "NoTenant"
	// ReasonPathUnsafe means the path crosses a symbolic link or a component that is not a folder; the message
	// names the component.
	ReasonPathUnsafe = "PathUnsafe"
	// ReasonPathUnavailable means the path does not exist on the filesystem (yet), or the operator cannot reach
	// it; the operator looks again every minute.
	ReasonPathUnavailable = "PathUnavailable"
	// ReasonTenantChanged means the namespace now belongs to another TenantQuota than the one that granted the
	// dataset; the DatasetMount must be deleted and declared again.
	ReasonTenantChanged = "TenantChanged"
	// ReasonInUse means deletion waits for TrainingJobs that use the dataset.
	ReasonInUse = "InUse"
	// ReasonVerificationDisabled means spec.verification is None.
	ReasonVerificationDisabled = "VerificationDisabled"
	// ReasonVerificationPending means verification waits for the claim to be bound.
	ReasonVerificationPending = "VerificationPending"
	// ReasonVerificationRunning means the verification Job has not finished.
	ReasonVerificationRunning = "VerificationRunning"
	// ReasonVerificationSucceeded means the manifest digest is in status.manifest.
	ReasonVerificationSucceeded = "VerificationSucceeded"
	// ReasonVerificationFailed means the verification Job failed or could not run before its deadline; the
	// message says why.
	ReasonVerificationFailed = "VerificationFailed"
)

// DatasetMountSpec names a folder on one of the factory's filesystems.
type DatasetMountSpec struct {
	// filesystem is the name of a filesystem in the operator configuration. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable: create a new DatasetMount for other data"
	Filesystem string `json:"filesystem"`

	// path is the dataset's absolute, clean folder inside the filesystem, under one of the tenant's storage
	// roots. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:Pattern=`^/([^/\x00-\x1f%]+(/[^/\x00-\x1f%]+)*)?$`
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(s, s == '.' || s == '..')",message="must not contain '.' or '..' segments"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable: create a new DatasetMount for other data"
	Path string `json:"path"`

	// access is ReadOnly (default) or ReadWrite. ReadWrite needs a ReadWrite storage root of the tenant and is
	// meant for checkpoints and outputs. Immutable.
	// +optional
	// +kubebuilder:default=ReadOnly
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable: create a new DatasetMount for other access"
	Access Access `json:"access,omitempty"`

	// classification is the data class, which the tenant must be allowed to use.
	// +required
	Classification DataClassification `json:"classification"`

	// version is a free-text version of the dataset, recorded in the run records of the jobs that use it.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Version string `json:"version,omitempty"`

	// verification fingerprints the dataset: None (default), Metadata (paths, sizes, modification times) or
	// Content (sha256 of every byte).
	// +optional
	// +kubebuilder:default=None
	Verification VerificationMode `json:"verification,omitempty"`
}

// DatasetMountStatus is what the operator observed of the dataset.
type DatasetMountStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (the claim is bound), Verified (the manifest digest is known), and Reconciling and
	// Stalled for kstatus.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// volumeName is the PersistentVolume of the dataset.
	// +optional
	VolumeName string `json:"volumeName,omitempty"`

	// claimName is the PersistentVolumeClaim in this namespace that pods mount.
	// +optional
	ClaimName string `json:"claimName,omitempty"`

	// subPath is the folder inside the volume that pods mount, for filesystems mounted whole.
	// +optional
	SubPath string `json:"subPath,omitempty"`

	// tenant is the TenantQuota that granted the dataset when its volume was made. A namespace that moves to
	// another TenantQuota loses its datasets (Ready False, TenantChanged).
	// +optional
	Tenant string `json:"tenant,omitempty"`

	// manifest is the result of the last successful verification.
	// +optional
	Manifest *Manifest `json:"manifest,omitempty"`
}

// Manifest is a dataset's fingerprint.
type Manifest struct {
	// digest is "sha256:" and the hex digest of the sorted manifest of the dataset.
	Digest string `json:"digest"`
	// files is the number of files (symlinks included).
	Files int64 `json:"files"`
	// bytes is the total size of the regular files.
	Bytes int64 `json:"bytes"`
	// mode is the verification mode that produced the digest.
	Mode VerificationMode `json:"mode"`
	// verifiedAt is when the digest was computed.
	VerifiedAt metav1.Time `json:"verifiedAt"`
}

// DatasetMount binds a folder of the factory's parallel filesystem as a volume in the tenant's namespace, checks
// that the tenant may use it, and records exactly which data it was.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dsm,categories=aifactory
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Access",type=string,JSONPath=`.spec.access`
// +kubebuilder:printcolumn:name="Classification",type=string,JSONPath=`.spec.classification`
// +kubebuilder:printcolumn:name="Digest",type=string,JSONPath=`.status.manifest.digest`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.spec.path`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DatasetMount struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec names the data.
	// +required
	Spec DatasetMountSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status DatasetMountStatus `json:"status,omitempty"`
}

// DatasetMountList is a list of DatasetMounts.
// +kubebuilder:object:root=true
type DatasetMountList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DatasetMount `json:"items"`
}
