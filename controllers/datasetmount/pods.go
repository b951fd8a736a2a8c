package datasetmount

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasets"
)

// ClaimPrefix starts the name of every DatasetMount's claim. In tenant namespaces a claim with this prefix
// can only be mounted as its DatasetMount grants.
const ClaimPrefix = "dataset-"

// PodPath is where the API server sends Pods of tenant namespaces (create, and the ephemeral containers
// subresource) to be checked against the namespace's DatasetMounts.
const PodPath = "/validate--v1-pod"

// The registrations of the Pod webhook, for new pods and for ephemeral containers added to running ones (other
// pod updates cannot change volumes or mounts, and are not sent): the chart, config/webhook and the local
// factory limit both to the namespaces labelled aifactory.eu/tenant.
// +kubebuilder:webhook:path=/validate--v1-pod,mutating=false,failurePolicy=fail,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=vpod-datasets.aifactory.eu,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate--v1-pod,mutating=false,failurePolicy=fail,sideEffects=None,groups="",resources=pods/ephemeralcontainers,verbs=update,versions=v1,name=vpodephemeral-datasets.aifactory.eu,admissionReviewVersions=v1

// PodValidator refuses Pods that mount a dataset claim wider or more writable than its DatasetMount grants,
// whoever creates them (a tenant directly, a Deployment, the Job controller).
type PodValidator struct {
	Reader  client.Reader
	Config  *configv1.Configuration
	Decoder admission.Decoder
}

// Handle checks the Pod of a create or an ephemeral containers update; other updates cannot change volumes or
// mounts and pass.
func (v *PodValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != "CREATE" && req.SubResource != "ephemeralcontainers" {
		return admission.Allowed("")
	}
	pod := &corev1.Pod{}
	if err := v.Decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var list aifv1.DatasetMountList
	if err := v.Reader.List(ctx, &list, client.InNamespace(req.Namespace)); err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("listing DatasetMounts: %w", err))
	}
	if errs := CheckPodDatasets(pod, list.Items, v.Config); len(errs) > 0 {
		name := pod.Name
		if name == "" {
			name = pod.GenerateName
		}
		status := apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, name, errs).Status()
		return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &status}}
	}
	return admission.Allowed("")
}

// CheckPodDatasets checks every claim volume of the pod whose name has the dataset prefix against the
// DatasetMount whose claim it is: the claim must belong to a DatasetMount the tenant may use now; each mount
// of a ReadOnly dataset must be read-only (or the volume itself read-only); and on filesystems mounted whole,
// each mount must have exactly the dataset's subPath.
func CheckPodDatasets(pod *corev1.Pod, dsms []aifv1.DatasetMount, cfg *configv1.Configuration) field.ErrorList {
	byClaim := map[string]*aifv1.DatasetMount{}
	for i := range dsms {
		byClaim[ClaimName(&dsms[i])] = &dsms[i]
	}
	var errs field.ErrorList
	volumes := field.NewPath("spec", "volumes")
	for i, vol := range pod.Spec.Volumes {
		if d := byClaim[pod.Name+"-"+vol.Name]; vol.Ephemeral != nil && d != nil {
			// The claim of an ephemeral volume is named <pod>-<volume>: a pod must not make the claim of a
			// DatasetMount (one made before the DatasetMount leaves it ClaimConflict, without a volume).
			errs = append(errs, field.Forbidden(volumes.Index(i).Child("name"), fmt.Sprintf("the ephemeral volume's claim would be %s-%s, the claim of DatasetMount %s",
				pod.Name, vol.Name, d.Name)))
			continue
		}
		pvc := vol.PersistentVolumeClaim
		if pvc == nil || !strings.HasPrefix(pvc.ClaimName, ClaimPrefix) {
			continue
		}
		d := byClaim[pvc.ClaimName]
		if msg := claimRefusal(pod, pvc.ClaimName, d, cfg); msg != "" {
			errs = append(errs, field.Forbidden(volumes.Index(i).Child("persistentVolumeClaim", "claimName"), msg))
			continue
		}
		errs = append(errs, checkMounts(pod, &vol, d, cfg)...)
	}
	return errs
}

// claimRefusal says why no pod may mount the dataset claim now: no DatasetMount has it, it is being deleted or
// revoked, or its path does not resolve without links (resolved again for every pod, so that a folder swapped
// for a link since the controller last looked is not mounted). Empty when the claim may be mounted.
func claimRefusal(pod *corev1.Pod, claim string, d *aifv1.DatasetMount, cfg *configv1.Configuration) string {
	switch {
	case d == nil:
		return fmt.Sprintf("claims named %s* belong to DatasetMounts, and no DatasetMount of namespace %s has claim %s", ClaimPrefix, pod.Namespace, claim)
	case d.DeletionTimestamp != nil:
		return fmt.Sprintf("DatasetMount %s is being deleted", d.Name)
	case datasets.Revoked(d):
		return fmt.Sprintf("DatasetMount %s may not be used: %s", d.Name, readyMessage(d))
	}
	if err := checkPathWithin(cfg, d, pathTimeout); err != nil {
		return fmt.Sprintf("DatasetMount %s: spec.path: %v (resolved without following symbolic links)", d.Name, err)
	}
	return ""
}

// pathTimeout bounds the path check of one pod's dataset, so that a filesystem that hangs fails the pod's
// admission with a reason instead of the API server's webhook timeout.
const pathTimeout = 3 * time.Second

func checkPathWithin(cfg *configv1.Configuration, d *aifv1.DatasetMount, within time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- datasets.CheckPath(cfg, d) }()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		return fmt.Errorf("the filesystem did not answer within %s", within)
	}
}

// checkMounts checks the mounts of a dataset claim's volume: read-only for ReadOnly data, exactly the dataset's
// subPath on a filesystem mounted whole, and no fsGroup there (the kubelet would change the group of the whole
// volume, here the whole filesystem).
func checkMounts(pod *corev1.Pod, vol *corev1.Volume, d *aifv1.DatasetMount, cfg *configv1.Configuration) field.ErrorList {
	var errs field.ErrorList
	claim := vol.PersistentVolumeClaim
	subPath := ""
	if fs := datasets.Filesystem(cfg, d.Spec.Filesystem); fs != nil {
		subPath = datasets.SubPath(d, fs)
	}
	if msg := datasets.FSGroupConflict(d, cfg); msg != "" && pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.FSGroup != nil {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "securityContext", "fsGroup"), msg))
	}
	readOnly := d.Spec.Access != aifv1.ReadWrite
	forEachMount(pod, vol.Name, func(mp *field.Path, m *corev1.VolumeMount) {
		if readOnly && !claim.ReadOnly && !m.ReadOnly {
			errs = append(errs, field.Forbidden(mp.Child("readOnly"), fmt.Sprintf("DatasetMount %s is ReadOnly: mount claim %s with readOnly: true", d.Name, claim.ClaimName)))
		}
		if subPath != "" && (m.SubPath != subPath || m.SubPathExpr != "") {
			errs = append(errs, field.Forbidden(mp.Child("subPath"), fmt.Sprintf("claim %s is the whole filesystem %s; DatasetMount %s grants subPath %q only",
				claim.ClaimName, d.Spec.Filesystem, d.Name, subPath)))
		}
	})
	return errs
}

// forEachMount calls f for every mount of the named volume in the pod's containers, init containers and
// ephemeral containers.
func forEachMount(pod *corev1.Pod, volume string, f func(*field.Path, *corev1.VolumeMount)) {
	visit := func(p *field.Path, mounts []corev1.VolumeMount) {
		for j := range mounts {
			if mounts[j].Name == volume {
				f(p.Child("volumeMounts").Index(j), &mounts[j])
			}
		}
	}
	spec := field.NewPath("spec")
	for i := range pod.Spec.InitContainers {
		visit(spec.Child("initContainers").Index(i), pod.Spec.InitContainers[i].VolumeMounts)
	}
	for i := range pod.Spec.Containers {
		visit(spec.Child("containers").Index(i), pod.Spec.Containers[i].VolumeMounts)
	}
	for i := range pod.Spec.EphemeralContainers {
		visit(spec.Child("ephemeralContainers").Index(i), pod.Spec.EphemeralContainers[i].VolumeMounts)
	}
}

func readyMessage(d *aifv1.DatasetMount) string {
	if c := apimeta.FindStatusCondition(d.Status.Conditions, aifv1.ConditionReady); c != nil {
		return c.Reason + ": " + c.Message
	}
	return "not ready"
}
