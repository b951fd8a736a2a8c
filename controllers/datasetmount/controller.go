// Package datasetmount holds the DatasetMount controller and admission webhook: a folder of a parallel
// filesystem becomes a read-only (or, for checkpoints, read-write) volume in the tenant's namespace, checked
// against the tenant's storage roots, fingerprinted on request, and kept while jobs use it.
package datasetmount

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/conflict"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount/manifest"
)

// Reconciler binds a DatasetMount's folder as a PersistentVolume and claim, verifies it, and protects it while
// unfinished TrainingJobs use it.
type Reconciler struct {
	Client   client.Client
	Config   *configv1.Configuration
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=aifactory.eu,resources=datasetmounts,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=aifactory.eu,resources=datasetmounts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=aifactory.eu,resources=datasetmounts/finalizers,verbs=update
// +kubebuilder:rbac:groups=aifactory.eu,resources=trainingjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=aifactory.eu,resources=tenantquotas,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=persistentvolumes,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// observed is what one pass read.
type observed struct {
	fs       *configv1.Filesystem
	invalid  field.ErrorList
	noTenant bool
	claim    *corev1.PersistentVolumeClaim
	users    []string
	verify   verification
}

// Reconcile brings one DatasetMount's volume, claim, verification and status up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return conflict.Ignore(r.reconcile(ctx, req))
}

func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	dsm := &aifv1.DatasetMount{}
	if err := r.Client.Get(ctx, req.NamespacedName, dsm); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	users, err := Users(ctx, r.Client, dsm)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.syncFinalizers(ctx, dsm, users); err != nil {
		return ctrl.Result{}, err
	}
	if dsm.DeletionTimestamp != nil {
		return ctrl.Result{}, r.finalize(ctx, dsm, users)
	}
	obs, err := r.observe(ctx, dsm, users)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(obs.invalid) == 0 {
		if obs.claim, err = r.ensureVolume(ctx, dsm, obs.fs); err != nil {
			return ctrl.Result{}, err
		}
		if obs.verify, err = r.ensureVerification(ctx, dsm, obs); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, r.writeStatus(ctx, dsm, ComputeStatus(dsm, obs))
}

func (r *Reconciler) observe(ctx context.Context, dsm *aifv1.DatasetMount, users []string) (*observed, error) {
	obs := &observed{users: users}
	for i := range r.Config.Filesystems {
		if r.Config.Filesystems[i].Name == dsm.Spec.Filesystem {
			obs.fs = &r.Config.Filesystems[i]
		}
	}
	tenant, err := TenantOf(ctx, r.Client, dsm.Namespace)
	if err != nil {
		return nil, err
	}
	obs.noTenant = tenant == nil
	obs.invalid = ValidateDatasetMount(dsm, tenant, r.Config)
	return obs, nil
}

// Users lists the unfinished TrainingJobs of the namespace that mount the DatasetMount.
func Users(ctx context.Context, c client.Reader, dsm *aifv1.DatasetMount) ([]string, error) {
	var jobs aifv1.TrainingJobList
	if err := c.List(ctx, &jobs, client.InNamespace(dsm.Namespace), client.MatchingFields{TrainingJobDatasetIndex: dsm.Name}); err != nil {
		return nil, fmt.Errorf("listing training jobs: %w", err)
	}
	var out []string
	for _, tj := range jobs.Items {
		if tj.Status.Phase != aifv1.PhaseSucceeded && tj.Status.Phase != aifv1.PhaseFailed {
			out = append(out, tj.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// DatasetsOf are the DatasetMounts a TrainingJob mounts.
func DatasetsOf(tj *aifv1.TrainingJob) []string {
	var out []string
	for _, d := range tj.Spec.Datasets {
		out = append(out, d.Name)
	}
	if tj.Spec.Checkpoint != nil {
		out = append(out, tj.Spec.Checkpoint.DatasetMount)
	}
	return out
}

// syncFinalizers keeps the cleanup finalizer (until the volume is gone) and the in-use finalizer (while jobs use
// the dataset), with one write when either changes.
func (r *Reconciler) syncFinalizers(ctx context.Context, dsm *aifv1.DatasetMount, users []string) error {
	changed := false
	if dsm.DeletionTimestamp == nil {
		changed = controllerutil.AddFinalizer(dsm, aifv1.CleanupFinalizer)
	}
	if len(users) > 0 {
		changed = controllerutil.AddFinalizer(dsm, aifv1.InUseFinalizer) || changed
	} else {
		changed = controllerutil.RemoveFinalizer(dsm, aifv1.InUseFinalizer) || changed
	}
	if !changed {
		return nil
	}
	if err := r.Client.Update(ctx, dsm); err != nil {
		return fmt.Errorf("updating finalizers: %w", err)
	}
	return nil
}

// finalize waits while jobs use the dataset, then deletes the claim and the volume object (reclaim policy
// Retain: the data stays untouched) and lets the DatasetMount go.
func (r *Reconciler) finalize(ctx context.Context, dsm *aifv1.DatasetMount, users []string) error {
	if len(users) > 0 {
		st := dsm.Status.DeepCopy()
		apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: aifv1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: aifv1.ReasonInUse, ObservedGeneration: dsm.Generation,
			Message: "deletion waits for TrainingJobs that use the dataset: " + strings.Join(users, ", ")})
		return r.writeStatus(ctx, dsm, *st)
	}
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: dsm.Namespace, Name: ClaimName(dsm)}}
	if err := r.Client.Delete(ctx, claim); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting claim: %w", err)
	}
	pv := &corev1.PersistentVolume{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: VolumeName(dsm)}, pv); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("reading volume: %w", err)
	case ownsVolume(dsm, pv):
		if err := r.Client.Delete(ctx, pv); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting volume: %w", err)
		}
	}
	if controllerutil.RemoveFinalizer(dsm, aifv1.CleanupFinalizer) {
		if err := r.Client.Update(ctx, dsm); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("removing finalizer: %w", err)
		}
	}
	return nil
}

func ownsVolume(dsm *aifv1.DatasetMount, pv *corev1.PersistentVolume) bool {
	return pv.Annotations[NamespaceAnnotation] == dsm.Namespace && pv.Annotations[NameAnnotation] == dsm.Name
}

// ensureVolume creates the volume and the claim if they are missing, and returns the claim.
func (r *Reconciler) ensureVolume(ctx context.Context, dsm *aifv1.DatasetMount, fs *configv1.Filesystem) (*corev1.PersistentVolumeClaim, error) {
	pv := &corev1.PersistentVolume{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: VolumeName(dsm)}, pv); {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, PersistentVolume(dsm, fs)); client.IgnoreAlreadyExists(err) != nil {
			return nil, fmt.Errorf("creating volume: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("reading volume: %w", err)
	case !ownsVolume(dsm, pv):
		return nil, fmt.Errorf("volume %s belongs to another dataset", pv.Name)
	}
	claim := &corev1.PersistentVolumeClaim{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: dsm.Namespace, Name: ClaimName(dsm)}, claim); {
	case apierrors.IsNotFound(err):
		claim = PersistentVolumeClaim(dsm)
		if err := r.Client.Create(ctx, claim); client.IgnoreAlreadyExists(err) != nil {
			return nil, fmt.Errorf("creating claim: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("reading claim: %w", err)
	}
	return claim, nil
}

// verification is the state of the current generation's verification.
type verification struct {
	running bool
	result  *manifest.Result
	failure string
}

// ensureVerification starts the verification Job of the current generation once the claim is bound, and reads
// its result when it has finished.
func (r *Reconciler) ensureVerification(ctx context.Context, dsm *aifv1.DatasetMount, obs *observed) (verification, error) {
	if dsm.Spec.Verification == aifv1.VerificationNone || obs.claim.Status.Phase != corev1.ClaimBound || verifiedNow(dsm) {
		return verification{}, nil
	}
	if r.Config.Verification.Image == "" {
		return verification{failure: "no verification image is configured (verification.image in the operator configuration)"}, nil
	}
	job := &batchv1.Job{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: dsm.Namespace, Name: VerificationJobName(dsm)}, job); {
	case apierrors.IsNotFound(err):
		job = VerificationJob(dsm, SubPath(dsm, obs.fs), r.Config.Verification.Image)
		if err := r.Client.Create(ctx, job); client.IgnoreAlreadyExists(err) != nil {
			return verification{}, fmt.Errorf("creating verification job: %w", err)
		}
		return verification{running: true}, nil
	case err != nil:
		return verification{}, fmt.Errorf("reading verification job: %w", err)
	}
	done, failed := jobFinished(job)
	if !done {
		return verification{running: true}, nil
	}
	msg, err := r.terminationMessage(ctx, job)
	if err != nil {
		return verification{}, err
	}
	if failed {
		return verification{failure: "the verification job failed: " + msg}, nil
	}
	var res manifest.Result
	if err := json.Unmarshal([]byte(msg), &res); err != nil || !strings.HasPrefix(res.Digest, "sha256:") {
		return verification{failure: fmt.Sprintf("the verification job reported no manifest: %q", msg)}, nil
	}
	return verification{result: &res}, nil
}

func verifiedNow(dsm *aifv1.DatasetMount) bool {
	c := apimeta.FindStatusCondition(dsm.Status.Conditions, aifv1.ConditionVerified)
	return c != nil && c.ObservedGeneration == dsm.Generation && c.Reason != aifv1.ReasonVerificationRunning &&
		dsm.Status.Manifest != nil && dsm.Status.Manifest.Mode == dsm.Spec.Verification
}

func jobFinished(job *batchv1.Job) (done, failed bool) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, false
		case batchv1.JobFailed:
			return true, true
		}
	}
	return false, false
}

// terminationMessage reads what the verification container wrote to its termination log.
func (r *Reconciler) terminationMessage(ctx context.Context, job *batchv1.Job) (string, error) {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(job.Namespace), client.MatchingLabels{batchv1.JobNameLabel: job.Name}); err != nil {
		return "", fmt.Errorf("listing verification pods: %w", err)
	}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "verify" && cs.State.Terminated != nil {
				return strings.TrimSpace(cs.State.Terminated.Message), nil
			}
		}
	}
	return "", nil
}

// writeStatus writes the status if it changed, then records events for changed conditions.
func (r *Reconciler) writeStatus(ctx context.Context, dsm *aifv1.DatasetMount, st aifv1.DatasetMountStatus) error {
	if equality.Semantic.DeepEqual(dsm.Status, st) {
		return nil
	}
	old := dsm.Status.DeepCopy()
	dsm.Status = st
	if err := r.Client.Status().Update(ctx, dsm); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	if r.Recorder == nil {
		return nil
	}
	for _, c := range st.Conditions {
		before := apimeta.FindStatusCondition(old.Conditions, c.Type)
		if before != nil && before.Status == c.Status && before.Reason == c.Reason {
			continue
		}
		kind := corev1.EventTypeNormal
		if c.Status == metav1.ConditionFalse && c.Reason != aifv1.ReasonVerificationRunning && c.Reason != aifv1.ReasonClaimPending {
			kind = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(dsm, nil, kind, c.Reason, c.Type, "%s", c.Message)
	}
	return nil
}
