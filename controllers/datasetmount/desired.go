package datasetmount

import (
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/names"
)

// Annotations on the PersistentVolume naming the DatasetMount it serves (names may be too long for labels).
const (
	NamespaceAnnotation = "aifactory.eu/datasetmount-namespace"
	NameAnnotation      = "aifactory.eu/datasetmount-name"
)

// nominalSize is the capacity written on the volume and requested by the claim. A static dataset volume has no
// size of its own; the figure is small so that namespace storage quotas never refuse the claim.
var nominalSize = resource.MustParse("1Mi")

// VolumeName is the PersistentVolume of a DatasetMount. Volumes are cluster-wide, so the name carries a hash of
// namespace and name: "a-b"/"c" and "a"/"b-c" must not share a volume.
func VolumeName(dsm *aifv1.DatasetMount) string {
	return names.WithHash("dataset-"+dsm.Namespace+"-"+dsm.Name, dsm.Namespace+"/"+dsm.Name, 253)
}

// ClaimName is the claim in the DatasetMount's namespace that pods mount.
func ClaimName(dsm *aifv1.DatasetMount) string {
	return names.Short("dataset-"+dsm.Name, 253)
}

// SubPath is the folder inside the volume that pods mount: the dataset path for filesystems mounted whole,
// nothing otherwise.
func SubPath(dsm *aifv1.DatasetMount, fs *configv1.Filesystem) string {
	if fs.CSI != nil && fs.CSI.WholeFilesystem {
		return strings.TrimPrefix(dsm.Spec.Path, "/")
	}
	return ""
}

func accessMode(a aifv1.Access) corev1.PersistentVolumeAccessMode {
	if a == aifv1.ReadWrite {
		return corev1.ReadWriteMany
	}
	return corev1.ReadOnlyMany
}

// PersistentVolume is the dataset's volume: pre-bound to its claim, reclaim policy Retain (deleting the volume
// object never deletes data), read-only unless the DatasetMount is ReadWrite.
func PersistentVolume(dsm *aifv1.DatasetMount, fs *configv1.Filesystem) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        VolumeName(dsm),
			Labels:      map[string]string{aifv1.ManagedByLabel: aifv1.ManagedByValue},
			Annotations: map[string]string{NamespaceAnnotation: dsm.Namespace, NameAnnotation: dsm.Name},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: nominalSize},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{accessMode(dsm.Spec.Access)},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			VolumeMode:                    ptr.To(corev1.PersistentVolumeFilesystem),
			ClaimRef: &corev1.ObjectReference{
				APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: dsm.Namespace, Name: ClaimName(dsm),
			},
		},
	}
	readOnly := dsm.Spec.Access != aifv1.ReadWrite
	switch {
	case fs.CSI != nil:
		pv.Spec.MountOptions = fs.CSI.MountOptions
		src := &corev1.CSIPersistentVolumeSource{
			Driver:       fs.CSI.Driver,
			VolumeHandle: expand(fs.CSI.VolumeHandle, dsm.Spec.Path),
			ReadOnly:     readOnly,
			FSType:       fs.CSI.FSType,
		}
		if len(fs.CSI.VolumeAttributes) > 0 {
			src.VolumeAttributes = map[string]string{}
			for k, v := range fs.CSI.VolumeAttributes {
				src.VolumeAttributes[k] = expand(v, dsm.Spec.Path)
			}
		}
		pv.Spec.CSI = src
	case fs.HostPath != nil:
		pv.Spec.HostPath = &corev1.HostPathVolumeSource{
			Path: strings.TrimSuffix(fs.HostPath.Root, "/") + dsm.Spec.Path,
			Type: ptr.To(corev1.HostPathDirectory),
		}
	}
	return pv
}

func expand(template, path string) string {
	return strings.ReplaceAll(template, configv1.PathPlaceholder, path)
}

// PersistentVolumeClaim is the claim that binds the dataset's volume in its namespace.
func PersistentVolumeClaim(dsm *aifv1.DatasetMount) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: childMeta(dsm, ClaimName(dsm)),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{accessMode(dsm.Spec.Access)},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: nominalSize}},
			StorageClassName: ptr.To(""),
			VolumeName:       VolumeName(dsm),
			VolumeMode:       ptr.To(corev1.PersistentVolumeFilesystem),
		},
	}
}

// childMeta is the metadata of a namespaced child: managed by the operator and owned by the DatasetMount.
func childMeta(dsm *aifv1.DatasetMount, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: dsm.Namespace,
		Labels:          map[string]string{aifv1.ManagedByLabel: aifv1.ManagedByValue},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(dsm, aifv1.GroupVersion.WithKind("DatasetMount"))},
	}
}

// VerificationJobName is the Job that verifies one generation of a DatasetMount.
func VerificationJobName(dsm *aifv1.DatasetMount) string {
	suffix := fmt.Sprintf("-%d", dsm.Generation)
	return names.Short("verify-"+dsm.Name, 63-len(suffix)) + suffix
}

// VerificationJob walks the dataset read-only with the operator's own binary and reports the manifest as the
// container's termination message. It passes the restricted Pod Security profile.
func VerificationJob(dsm *aifv1.DatasetMount, subPath, image string) *batchv1.Job {
	const mount = "/dataset"
	return &batchv1.Job{
		ObjectMeta: childMeta(dsm, VerificationJobName(dsm)),
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			TTLSecondsAfterFinished: ptr.To[int32](86400),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
					aifv1.ManagedByLabel: aifv1.ManagedByValue, aifv1.DatasetMountLabel: names.Short(dsm.Name, 63),
				}},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr.To(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:                     "verify",
						Image:                    image,
						Args:                     []string{"verify-dataset", "--root=" + mount, "--mode=" + string(dsm.Spec.Verification)},
						TerminationMessagePolicy: corev1.TerminationMessageReadFile,
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							RunAsNonRoot:             ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "dataset", MountPath: mount, SubPath: subPath, ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{{Name: "dataset", VolumeSource: corev1.VolumeSource{
						PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: ClaimName(dsm), ReadOnly: true},
					}}},
				},
			},
		},
	}
}
