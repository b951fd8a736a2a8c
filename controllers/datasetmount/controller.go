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
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/conflict"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount/manifest"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasets"
	"github.com/aifactory-eu/aifactory-operator/controllers/index"
	"github.com/aifactory-eu/aifactory-operator/controllers/jobs"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenancy"
)

// Reconciler binds a DatasetMount's folder as a PersistentVolume and claim, verifies it, and protects it while
// unfinished TrainingJobs use it.
type Reconciler struct {
	Client   client.Client
	Config   *configv1.Configuration
	Recorder events.EventRecorder
	// Clock tells the time of verification deadlines; nil means the real clock.
	Clock clock.PassiveClock
	// APIReader reads around the cache where a stale copy would mislead (a claim the cache has not seen yet).
	APIReader client.Reader
}

// +kubebuilder:rbac:groups=aifactory.eu,resources=datasetmounts,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=aifactory.eu,resources=datasetmounts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=aifactory.eu,resources=datasetmounts/finalizers,verbs=update
// +kubebuilder:rbac:groups=aifactory.eu,resources=trainingjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=aifactory.eu,resources=tenantquotas,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=persistentvolumes,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// observed is what one pass read.
type observed struct {
	fs       *configv1.Filesystem
	invalid  field.ErrorList
	noTenant bool
	// tenant is the TenantQuota that owns the namespace now; empty without one.
	tenant string
	// unlabelled is true while the namespace does not carry the tenant's label yet.
	unlabelled bool
	// pathErr is why the path cannot be resolved without symbolic links, nil when it can.
	pathErr error
	claim   *corev1.PersistentVolumeClaim
	// conflict says why the claim or the volume could not be made (a claim of that name is not the operator's).
	conflict string
	users    []string
	// running are the users whose pods may be running (an attempt's Job exists).
	running []string
	verify  verification
	now     time.Time
}

// granted reports whether the tenant may use the dataset now: the spec is permitted, the namespace still
// belongs to the tenant that granted it, and the path resolves without symbolic links.
func (o *observed) granted(dsm *aifv1.DatasetMount) bool {
	return len(o.invalid) == 0 && !o.tenantChanged(dsm) && o.pathErr == nil && !o.unlabelled
}

// unsafe reports whether the path crosses a symbolic link or a file.
func (o *observed) unsafe() bool {
	return datasets.PathUnsafe(o.pathErr)
}

func (o *observed) tenantChanged(dsm *aifv1.DatasetMount) bool {
	return dsm.Status.Tenant != "" && o.tenant != "" && o.tenant != dsm.Status.Tenant
}

// Reconcile brings one DatasetMount's volume, claim, verification and status up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res, err := r.reconcile(ctx, req)
	return conflict.Ignore(ctx, res, err)
}

func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	dsm := &aifv1.DatasetMount{}
	if err := r.Client.Get(ctx, req.NamespacedName, dsm); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	jobs, err := usersOf(ctx, r.Client, dsm)
	if err != nil {
		return ctrl.Result{}, err
	}
	users := unfinished(jobs)
	if err := r.syncFinalizers(ctx, dsm, users); err != nil {
		return ctrl.Result{}, err
	}
	if dsm.DeletionTimestamp != nil {
		return ctrl.Result{}, r.finalize(ctx, dsm, users)
	}
	obs, err := r.observe(ctx, dsm, jobs)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.makeChildren(ctx, dsm, obs); err != nil {
		return ctrl.Result{}, r.showFailure(ctx, dsm, err)
	}
	return requeue(dsm, obs), r.writeStatus(ctx, dsm, ComputeStatus(dsm, obs))
}

// makeChildren makes the volume, claim and verification of a granted DatasetMount, or deletes the volume and
// claim of a revoked one once no running run uses them.
func (r *Reconciler) makeChildren(ctx context.Context, dsm *aifv1.DatasetMount, obs *observed) error {
	var err error
	switch {
	case obs.granted(dsm):
		if obs.claim, obs.conflict, err = r.ensureVolume(ctx, dsm, obs); err != nil || obs.claim == nil {
			return err
		}
		obs.verify, err = r.ensureVerification(ctx, dsm, obs)
		return err
	case obs.pathErr != nil && !obs.unsafe(), obs.unlabelled && len(obs.invalid) == 0 && !obs.tenantChanged(dsm):
		// The path is missing or out of reach for now, or the namespace waits for its label: nothing new is
		// made, and what exists stays.
		return nil
	case len(obs.running) == 0:
		// Revoked: without the claim and the volume no new pod can mount the data. Runs that are still
		// running keep them until they end.
		return r.deleteVolume(ctx, dsm)
	}
	return nil
}

// showFailure writes the status of a pass whose writes stopped at err, and returns err for the retry: the last
// status written, with Ready false naming the failed write and the API server's answer. A conflict writes
// nothing: the newer object's event brings the pass back.
func (r *Reconciler) showFailure(ctx context.Context, dsm *aifv1.DatasetMount, err error) error {
	return apply.ShowFailure(err, dsm.Status.Conditions, dsm.Generation, func(conds []metav1.Condition) error {
		st := *dsm.Status.DeepCopy()
		st.Conditions = conds
		return r.writeStatus(ctx, dsm, st)
	})
}

// pathRecheck is how often a granted DatasetMount's path is resolved again without an event.
const pathRecheck = 10 * time.Minute

// requeue asks for another pass when a missing path may have appeared (each minute), when a verification
// reaches its deadline, and every pathRecheck for a granted DatasetMount.
func requeue(dsm *aifv1.DatasetMount, obs *observed) ctrl.Result {
	if obs.pathErr != nil && !obs.unsafe() {
		return ctrl.Result{RequeueAfter: time.Minute}
	}
	var after time.Duration
	if obs.granted(dsm) {
		// A folder swapped for a link after the last look is found within this time, even without an event.
		after = pathRecheck
	}
	if left := obs.verify.deadline.Sub(obs.now); obs.verify.running && left > 0 && (after == 0 || left < after) {
		after = left
	}
	if obs.verify.again {
		after = 2 * time.Second
	}
	return ctrl.Result{RequeueAfter: after}
}

func (r *Reconciler) observe(ctx context.Context, dsm *aifv1.DatasetMount, jobs []aifv1.TrainingJob) (*observed, error) {
	obs := &observed{users: unfinished(jobs), running: running(jobs), fs: datasets.Filesystem(r.Config, dsm.Spec.Filesystem), now: r.now()}
	tenant, err := tenancy.Of(ctx, r.Client, dsm.Namespace)
	if err != nil {
		return nil, err
	}
	if tenant != nil {
		obs.tenant = tenant.Name
	}
	obs.noTenant = tenant == nil
	obs.invalid = ValidateDatasetMount(dsm, tenant, r.Config)
	if tenant != nil {
		// The Pod webhooks see namespaces by their tenant label: no claim is made before the label is there.
		ns := &corev1.Namespace{}
		if err := r.Client.Get(ctx, types.NamespacedName{Name: dsm.Namespace}, ns); client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("reading namespace: %w", err)
		}
		obs.unlabelled = ns.Labels[aifv1.TenantLabel] != tenant.Name
	}
	if len(obs.invalid) == 0 && !obs.unlabelled {
		obs.pathErr = datasets.CheckPath(r.Config, dsm)
	}
	return obs, nil
}

func (r *Reconciler) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

func usersOf(ctx context.Context, c client.Reader, dsm *aifv1.DatasetMount) ([]aifv1.TrainingJob, error) {
	var jobs aifv1.TrainingJobList
	if err := c.List(ctx, &jobs, client.InNamespace(dsm.Namespace), client.MatchingFields{index.TrainingJobDataset: dsm.Name}); err != nil {
		return nil, fmt.Errorf("listing training jobs: %w", err)
	}
	return jobs.Items, nil
}

// unfinished are the names of the runs that have not ended, sorted.
func unfinished(jobs []aifv1.TrainingJob) []string {
	return namesWhere(jobs, func(p aifv1.TrainingJobPhase) bool { return p != aifv1.PhaseSucceeded && p != aifv1.PhaseFailed })
}

// running are the names of the runs whose current attempt may have pods, sorted.
func running(jobs []aifv1.TrainingJob) []string {
	return namesWhere(jobs, func(p aifv1.TrainingJobPhase) bool {
		return p == aifv1.PhaseAdmitted || p == aifv1.PhaseRunning || p == aifv1.PhaseRestarting
	})
}

func namesWhere(jobs []aifv1.TrainingJob, keep func(aifv1.TrainingJobPhase) bool) []string {
	var out []string
	for _, tj := range jobs {
		if keep(tj.Status.Phase) {
			out = append(out, tj.Name)
		}
	}
	slices.Sort(out)
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
	if err := r.deleteVolume(ctx, dsm); err != nil {
		return err
	}
	if controllerutil.RemoveFinalizer(dsm, aifv1.CleanupFinalizer) {
		if err := r.Client.Update(ctx, dsm); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("removing finalizer: %w", err)
		}
	}
	return nil
}

// deleteVolume deletes the claim and the volume object (reclaim policy Retain: the data stays untouched), where
// they exist; both are read from the cache first so that a pass without them writes nothing.
func (r *Reconciler) deleteVolume(ctx context.Context, dsm *aifv1.DatasetMount) error {
	claim := &corev1.PersistentVolumeClaim{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: dsm.Namespace, Name: ClaimName(dsm)}, claim); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("reading claim: %w", err)
	case claim.DeletionTimestamp == nil && metav1.IsControlledBy(claim, dsm):
		if err := r.Client.Delete(ctx, claim); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting claim: %w", err)
		}
	}
	pv := &corev1.PersistentVolume{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: VolumeName(dsm)}, pv); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("reading volume: %w", err)
	case pv.DeletionTimestamp == nil && ownsVolume(dsm, pv):
		if err := r.Client.Delete(ctx, pv); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting volume: %w", err)
		}
	}
	return nil
}

// ownsVolume reports whether the volume was made for this DatasetMount: its namespace and name, and its UID where
// the volume records one, so that a DatasetMount declared again under the same name never adopts an old volume.
func ownsVolume(dsm *aifv1.DatasetMount, pv *corev1.PersistentVolume) bool {
	uid := pv.Annotations[UIDAnnotation]
	return pv.Annotations[NamespaceAnnotation] == dsm.Namespace && pv.Annotations[NameAnnotation] == dsm.Name &&
		(uid == "" || uid == string(dsm.UID))
}

// ownsClaim reports whether a claim is the one the operator makes for the DatasetMount: controlled by it and
// bound by name to its volume. A claim of the same name that the tenant made (directly, or as a pod's ephemeral
// volume) is not, and the volume is never made for it.
func ownsClaim(dsm *aifv1.DatasetMount, claim *corev1.PersistentVolumeClaim) bool {
	return metav1.IsControlledBy(claim, dsm) && claim.Spec.VolumeName == VolumeName(dsm)
}

// ensureVolume makes the claim, then the volume pre-bound to that claim's UID, and returns the claim once both
// are in place; conflict says why it stopped when a claim of that name is not the operator's. A volume that can
// no longer serve the claim (reserved for an earlier claim or DatasetMount of the same name, or reaching the data
// other than the configuration says) is deleted and made again; a volume whose source changed waits for the
// run users to end.
func (r *Reconciler) ensureVolume(ctx context.Context, dsm *aifv1.DatasetMount, obs *observed) (claim *corev1.PersistentVolumeClaim, conflict string, err error) {
	if claim, conflict, err = r.ensureClaim(ctx, dsm); claim == nil || err != nil {
		return nil, conflict, err
	}
	want := PersistentVolume(dsm, obs.fs, claim.UID)
	pv := &corev1.PersistentVolume{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: want.Name}, pv); {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, want); client.IgnoreAlreadyExists(err) != nil {
			return nil, "", fmt.Errorf("creating volume: %w", err)
		}
		return claim, "", nil
	case err != nil:
		return nil, "", fmt.Errorf("reading volume: %w", err)
	case pv.DeletionTimestamp != nil && pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.UID == claim.UID && len(obs.users) == 0:
		// Someone deleted the volume of this claim: storage protection keeps it while the claim is bound, so the
		// claim goes too, and both are made again.
		return nil, "", r.deleteVolume(ctx, dsm)
	case pv.DeletionTimestamp != nil:
		return nil, "", nil // the volume is going (an earlier claim's, or runs still use it)
	}
	stale := !ownsVolume(dsm, pv) || pv.Spec.ClaimRef == nil ||
		pv.Spec.ClaimRef.UID != "" && pv.Spec.ClaimRef.UID != claim.UID && pv.Status.Phase != corev1.VolumeBound
	switch {
	case stale && pv.Status.Phase == corev1.VolumeBound:
		return nil, fmt.Sprintf("volume %s is bound to an earlier DatasetMount's claim of the same name; it is released when that claim is gone", pv.Name), nil
	case stale:
		// Reserved for a claim or a DatasetMount that is gone (its claim deleted, by hand or before an
		// upgrade): it can never bind this claim. Deleting the object leaves the data alone (Retain).
		return nil, "", r.deletePV(ctx, pv)
	case !sameSource(pv, want) && len(obs.users) == 0:
		return nil, "", r.deleteVolume(ctx, dsm)
	}
	return claim, "", nil
}

// ensureClaim makes the DatasetMount's claim or finds it. A claim of that name that the operator did not make
// for this DatasetMount is a conflict; one the operator is deleting is waited for.
func (r *Reconciler) ensureClaim(ctx context.Context, dsm *aifv1.DatasetMount) (*corev1.PersistentVolumeClaim, string, error) {
	claim := &corev1.PersistentVolumeClaim{}
	key := types.NamespacedName{Namespace: dsm.Namespace, Name: ClaimName(dsm)}
	switch err := r.Client.Get(ctx, key, claim); {
	case apierrors.IsNotFound(err):
		claim = PersistentVolumeClaim(dsm)
		switch err := r.Client.Create(ctx, claim); {
		case apierrors.IsAlreadyExists(err):
			// The cache has not seen a claim made by an earlier pass, or someone else made one: ask the API
			// server.
			if err := r.reader().Get(ctx, key, claim); err != nil {
				return nil, "", fmt.Errorf("reading claim: %w", err)
			}
		case err != nil:
			return nil, "", fmt.Errorf("creating claim: %w", err)
		}
	case err != nil:
		return nil, "", fmt.Errorf("reading claim: %w", err)
	}
	switch {
	case metav1.IsControlledBy(claim, dsm) && claim.DeletionTimestamp != nil:
		return nil, "", nil // being deleted (revoked, or its volume replaced): made again once it is gone
	case !ownsClaim(dsm, claim):
		return nil, fmt.Sprintf("claim %s is not this DatasetMount's (it is not controlled by it, or names another volume); delete it", claim.Name), nil
	}
	return claim, "", nil
}

func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *Reconciler) deletePV(ctx context.Context, pv *corev1.PersistentVolume) error {
	if err := r.Client.Delete(ctx, pv); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting volume: %w", err)
	}
	return nil
}

// sameSource reports whether a volume reaches the data as want does: the source (handle, attributes, read-only
// flag, host path) and the access mode. Mount options are left out: volumes made before the operator added ro
// to them keep serving, read-only by their source and by the Pod webhook.
func sameSource(pv, want *corev1.PersistentVolume) bool {
	return equality.Semantic.DeepEqual(pv.Spec.PersistentVolumeSource, want.Spec.PersistentVolumeSource) && slices.Equal(pv.Spec.AccessModes, want.Spec.AccessModes)
}

// verification is the state of the current generation's verification.
type verification struct {
	running bool
	// waiting says why a running verification has not started, such as a pod that no node takes.
	waiting string
	// deadline is when a running verification fails.
	deadline time.Time
	// again asks for another pass soon (a replaced Job).
	again   bool
	result  *manifest.Result
	failure string
}

// ensureVerification starts the verification Job of the current generation once the claim is bound, and reads
// its result when it has finished. A verification that has not finished by its deadline fails, and its Job is
// deleted.
func (r *Reconciler) ensureVerification(ctx context.Context, dsm *aifv1.DatasetMount, obs *observed) (verification, error) {
	if verificationFinal(dsm) {
		return verification{}, r.stopOverdueVerification(ctx, dsm)
	}
	if dsm.Spec.Verification == aifv1.VerificationNone || obs.claim.Status.Phase != corev1.ClaimBound {
		return verification{}, nil
	}
	if r.Config.Verification.Image == "" {
		return verification{failure: noImage}, nil
	}
	classes, err := classes.Known(ctx, r.Client)
	if err != nil {
		return verification{}, err
	}
	want := VerificationJob(dsm, datasets.SubPath(dsm, obs.fs), &r.Config.Verification, classes)
	job := &batchv1.Job{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: dsm.Namespace, Name: want.Name}, job); {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, want); client.IgnoreAlreadyExists(err) != nil {
			return verification{}, fmt.Errorf("creating verification job: %w", err)
		}
		return verification{running: true, deadline: obs.now.Add(deadlineOf(r.Config))}, nil
	case err != nil:
		return verification{}, fmt.Errorf("reading verification job: %w", err)
	}
	if !metav1.IsControlledBy(job, dsm) || job.Annotations[VerificationSpecAnnotation] != want.Annotations[VerificationSpecAnnotation] {
		// Not the Job the operator makes now: someone else's Job of that name, or one of an earlier version of
		// the operator (another image). It is replaced, and the verification starts again.
		if job.DeletionTimestamp == nil {
			if err := r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				return verification{}, fmt.Errorf("deleting a verification job that is not the operator's: %w", err)
			}
		}
		// The Job may not be the DatasetMount's, so its deletion brings no event: look again shortly.
		return verification{running: true, waiting: fmt.Sprintf("job %s did not run the operator's verification; it is made again", job.Name),
			deadline: obs.now.Add(deadlineOf(r.Config)), again: true}, nil
	}
	pods, err := r.verificationPods(ctx, job, want)
	if err != nil {
		return verification{}, err
	}
	v := readVerification(job, pods)
	v.deadline = job.CreationTimestamp.Add(deadlineOf(r.Config))
	if v.running && !obs.now.Before(v.deadline) {
		// The failure is written first; the pass that reads it back stops the Job (stopOverdueVerification), so
		// that a pass on a stale copy cannot make the Job again.
		why := "no node ran it"
		if v.waiting != "" {
			why = v.waiting
		}
		return verification{failure: fmt.Sprintf("the verification did not finish within %s (verification.deadlineSeconds): %s", deadlineOf(r.Config), why)}, nil
	}
	return v, nil
}

func deadlineOf(cfg *configv1.Configuration) time.Duration {
	if d := cfg.Verification.DeadlineSeconds; d != nil {
		return time.Duration(*d) * time.Second
	}
	return time.Duration(configv1.DefaultVerificationDeadlineSeconds) * time.Second
}

// noImage is the failure of a verification that could not start for want of configuration; unlike the others
// it is not final, so that a corrected configuration verifies the dataset without a change to it.
const noImage = "no verification image is configured (verification.image in the operator configuration)"

// stopOverdueVerification deletes the current generation's verification Job if its verification failed while
// the Job was still unfinished (it ran past its deadline).
func (r *Reconciler) stopOverdueVerification(ctx context.Context, dsm *aifv1.DatasetMount) error {
	c := apimeta.FindStatusCondition(dsm.Status.Conditions, aifv1.ConditionVerified)
	if c.Reason != aifv1.ReasonVerificationFailed {
		return nil
	}
	job := &batchv1.Job{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: dsm.Namespace, Name: VerificationJobName(dsm)}, job); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading verification job: %w", err)
	}
	if done, _, _ := jobFinished(job); done || job.DeletionTimestamp != nil || !metav1.IsControlledBy(job, dsm) {
		return nil
	}
	if err := r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the overdue verification job: %w", err)
	}
	return nil
}

// verificationFinal reports whether the current generation's verification has ended, in success or failure; it
// is not repeated until the spec changes.
func verificationFinal(dsm *aifv1.DatasetMount) bool {
	c := apimeta.FindStatusCondition(dsm.Status.Conditions, aifv1.ConditionVerified)
	if c == nil || c.ObservedGeneration != dsm.Generation {
		return false
	}
	switch c.Reason {
	case aifv1.ReasonVerificationFailed:
		return c.Message != noImage
	case aifv1.ReasonVerificationSucceeded:
		return dsm.Status.Manifest != nil && dsm.Status.Manifest.Mode == dsm.Spec.Verification
	}
	return false
}

// readVerification reads a verification Job and the pods that may speak for it.
func readVerification(job *batchv1.Job, pods []corev1.Pod) verification {
	done, failed, why := jobFinished(job)
	if !done {
		return verification{running: true, waiting: waitingFor(pods)}
	}
	msg := ""
	for _, p := range pods {
		if m, ok := resultOf(&p, !failed); ok {
			msg = m
			break
		}
	}
	if failed {
		return verification{failure: strings.TrimSpace("the verification job failed: " + why + " " + msg)}
	}
	var res manifest.Result
	if err := json.Unmarshal([]byte(msg), &res); err != nil || !strings.HasPrefix(res.Digest, "sha256:") {
		return verification{failure: fmt.Sprintf("the verification job reported no manifest: %q", msg)}
	}
	return verification{result: &res}
}

func jobFinished(job *batchv1.Job) (done, failed bool, why string) {
	c := jobs.Ended(job)
	if c == nil || c.Type == batchv1.JobComplete {
		return c != nil, false, ""
	}
	return true, true, strings.TrimSpace(c.Reason + ": " + c.Message)
}

// resultOf is the termination message of a pod's verify container, if it terminated with the expected
// outcome (exit code 0 for a success).
func resultOf(p *corev1.Pod, success bool) (string, bool) {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == verifyContainer && cs.State.Terminated != nil && (cs.State.Terminated.ExitCode == 0) == success {
			return strings.TrimSpace(cs.State.Terminated.Message), true
		}
	}
	return "", false
}

// waitingFor says why a verification pod does not run yet, if the scheduler said so.
func waitingFor(pods []corev1.Pod) string {
	for _, p := range pods {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
				return fmt.Sprintf("pod %s is not scheduled: %s", p.Name, c.Message)
			}
		}
	}
	return ""
}

// verificationPods are the pods whose result counts for the verification Job: controlled by that Job (by
// UID) and running exactly the verification the operator builds (same containers, same volumes, no
// ephemeral containers). Anyone who may create pods in the namespace can give a pod the Job's labels and even
// an owner reference to it; such a pod counts only if it runs the operator's own verifier on the dataset,
// and then its result is the true one.
func (r *Reconciler) verificationPods(ctx context.Context, job, want *batchv1.Job) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(job.Namespace), client.MatchingLabels{batchv1.JobNameLabel: job.Name}); err != nil {
		return nil, fmt.Errorf("listing verification pods: %w", err)
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if metav1.IsControlledBy(&p, job) && RunsVerification(&p.Spec, &want.Spec.Template.Spec) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// RunsVerification reports whether a pod's spec runs the verification that want describes: the same single
// container (name, image or that image pinned to a digest, command, arguments, mounts), no init or ephemeral
// containers, the same volumes, user and group.
func RunsVerification(got, want *corev1.PodSpec) bool {
	if len(got.Containers) != 1 || len(want.Containers) != 1 || len(got.InitContainers) > 0 || len(got.EphemeralContainers) > 0 {
		return false
	}
	g, w := &got.Containers[0], &want.Containers[0]
	sameImage := g.Image == w.Image || strings.HasPrefix(g.Image, w.Image+"@sha256:")
	if g.Name != w.Name || !sameImage || !slices.Equal(g.Command, w.Command) || !slices.Equal(g.Args, w.Args) ||
		!equality.Semantic.DeepEqual(g.VolumeMounts, w.VolumeMounts) {
		return false
	}
	return equality.Semantic.DeepEqual(got.Volumes, want.Volumes) && identity(got.SecurityContext, g.SecurityContext) == identity(want.SecurityContext, w.SecurityContext)
}

// identity is the user and group a pod's container runs as, as far as the spec says.
func identity(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) [2]int64 {
	id := [2]int64{-1, -1}
	if pod != nil {
		id = [2]int64{ptr.Deref(pod.RunAsUser, -1), ptr.Deref(pod.RunAsGroup, -1)}
	}
	if c != nil && c.RunAsUser != nil {
		id[0] = *c.RunAsUser
	}
	if c != nil && c.RunAsGroup != nil {
		id[1] = *c.RunAsGroup
	}
	return id
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
	apply.Record(r.Recorder, dsm, apply.ConditionEvents(old.Conditions, st.Conditions, func(c metav1.Condition) bool {
		return c.Status == metav1.ConditionFalse && c.Reason != aifv1.ReasonVerificationRunning && c.Reason != aifv1.ReasonClaimPending
	}))
	return nil
}
