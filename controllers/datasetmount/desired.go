package datasetmount

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/names"
)

// Annotations on the PersistentVolume naming the DatasetMount it serves (names may be too long for labels).
const (
	NamespaceAnnotation = "aifactory.eu/datasetmount-namespace"
	NameAnnotation      = "aifactory.eu/datasetmount-name"
	UIDAnnotation       = "aifactory.eu/datasetmount-uid"
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

func accessMode(a aifv1.Access) corev1.PersistentVolumeAccessMode {
	if a == aifv1.ReadWrite {
		return corev1.ReadWriteMany
	}
	return corev1.ReadOnlyMany
}

// PersistentVolume is the dataset's volume: pre-bound to its claim (by UID once the claim exists, so that no
// other claim of that name can bind it), reclaim policy Retain (deleting the volume object never deletes data),
// read-only unless the DatasetMount is ReadWrite.
func PersistentVolume(dsm *aifv1.DatasetMount, fs *configv1.Filesystem, claimUID types.UID) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        VolumeName(dsm),
			Labels:      map[string]string{aifv1.ManagedByLabel: aifv1.ManagedByValue},
			Annotations: map[string]string{NamespaceAnnotation: dsm.Namespace, NameAnnotation: dsm.Name, UIDAnnotation: string(dsm.UID)},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: nominalSize},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{accessMode(dsm.Spec.Access)},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			VolumeMode:                    ptr.To(corev1.PersistentVolumeFilesystem),
			ClaimRef: &corev1.ObjectReference{
				APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: dsm.Namespace, Name: ClaimName(dsm), UID: claimUID,
			},
		},
	}
	readOnly := dsm.Spec.Access != aifv1.ReadWrite
	switch {
	case fs.CSI != nil:
		pv.Spec.MountOptions = slices.Clone(fs.CSI.MountOptions)
		if readOnly && !slices.Contains(pv.Spec.MountOptions, "ro") {
			// The driver mounts the volume read-only on the node, whatever the pod asks for.
			pv.Spec.MountOptions = append(slices.DeleteFunc(pv.Spec.MountOptions, func(o string) bool { return o == "rw" }), "ro")
		}
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

// verifyContainer is the name of the verification Job's container.
const verifyContainer = "verify"

// VerificationSpecAnnotation on a verification Job is a hash of the pod spec the operator built it with. A Job
// of the verification's name without the hash of what the operator builds now (made by someone else, or by an
// earlier version with another image) is replaced. Admission policies that rewrite the Job's pods (an image
// tag turned into a digest) leave the annotation alone.
const VerificationSpecAnnotation = "aifactory.eu/verification-spec"

// specHash hashes what the verification runs, leaving out its placement: GPU classes that appear later (found
// by discovery, or a flavor the cache has not seen yet) must not replace a running verification.
func specHash(spec *corev1.PodSpec) string {
	what := spec.DeepCopy()
	what.NodeSelector, what.Affinity, what.Tolerations = nil, nil, nil
	b, err := json.Marshal(what)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// VerificationJob walks the dataset read-only with the operator's own binary and reports the manifest as the
// container's termination message. It passes the restricted Pod Security profile, runs as the configured user
// and group, goes to the nodes where the filesystems are mounted (the configured selector, or the nodes of any
// GPU class, tolerating their taints), and has a deadline.
func VerificationJob(dsm *aifv1.DatasetMount, subPath string, cfg *configv1.Verification, classes map[string]classes.Class) *batchv1.Job {
	const mount = "/dataset"
	uid, gid, deadline := configv1.DefaultVerificationUID, configv1.DefaultVerificationUID, configv1.DefaultVerificationDeadlineSeconds
	if cfg.RunAsUser != nil {
		uid = *cfg.RunAsUser
	}
	if cfg.RunAsGroup != nil {
		gid = *cfg.RunAsGroup
	}
	if cfg.DeadlineSeconds != nil {
		deadline = *cfg.DeadlineSeconds
	}
	spec := corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To(uid),
			RunAsGroup:     ptr.To(gid),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:                     verifyContainer,
			Image:                    cfg.Image,
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
	}
	placeVerification(&spec, cfg, classes)
	meta := childMeta(dsm, VerificationJobName(dsm))
	meta.Annotations = map[string]string{VerificationSpecAnnotation: specHash(&spec)}
	return &batchv1.Job{
		ObjectMeta: meta,
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			ActiveDeadlineSeconds:   ptr.To(deadline),
			TTLSecondsAfterFinished: ptr.To[int32](86400),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
					aifv1.ManagedByLabel: aifv1.ManagedByValue, aifv1.DatasetMountLabel: names.Short(dsm.Name, 63),
				}},
				Spec: spec,
			},
		},
	}
}

// placeVerification sends verification pods where the filesystems are mounted: the configured node selector
// and tolerations, or else the nodes of any GPU class (one node selector term per class) with the tolerations
// of them all.
func placeVerification(spec *corev1.PodSpec, cfg *configv1.Verification, classes map[string]classes.Class) {
	spec.NodeSelector = maps.Clone(cfg.NodeSelector)
	spec.Tolerations = slices.Clone(cfg.Tolerations)
	if len(cfg.NodeSelector) > 0 && len(cfg.Tolerations) > 0 {
		return
	}
	var terms []corev1.NodeSelectorTerm
	var tolerations []corev1.Toleration
	for _, name := range slices.Sorted(maps.Keys(classes)) {
		c := classes[name]
		var term corev1.NodeSelectorTerm
		for _, k := range slices.Sorted(maps.Keys(c.NodeLabels)) {
			term.MatchExpressions = append(term.MatchExpressions, corev1.NodeSelectorRequirement{Key: k, Operator: corev1.NodeSelectorOpIn, Values: []string{c.NodeLabels[k]}})
		}
		if len(term.MatchExpressions) > 0 {
			terms = append(terms, term)
		}
		for _, t := range c.Tolerations {
			if !slices.ContainsFunc(tolerations, func(o corev1.Toleration) bool { return o.MatchToleration(&t) }) {
				tolerations = append(tolerations, t)
			}
		}
	}
	if len(cfg.NodeSelector) == 0 && len(terms) > 0 {
		spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}}
	}
	if len(cfg.Tolerations) == 0 {
		spec.Tolerations = tolerations
	}
}
