// Package datasetmount holds the DatasetMount controller and admission webhook: a folder of a parallel
// filesystem becomes a read-only (or, for checkpoints, read-write) volume in the tenant's namespace, checked
// against the tenant's storage roots, fingerprinted on request, and kept while jobs use it.
package datasetmount

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/conflict"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasets"
	"github.com/aifactory-eu/aifactory-operator/controllers/index"
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
	// APIReader reads a claim of the dataset's name that the cache does not hold: the cache keeps only claims
	// with the operator's label, and a tenant's own claim of that name must be seen before the operator's is made.
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

// observed is what one pass read, from the cache.
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
	users   []string
	// running are the users whose pods may be running (an attempt's Job exists).
	running []string
	// claim and volume are the objects of the DatasetMount's claim and volume names, whoever made them; nil
	// where there is none.
	claim  *corev1.PersistentVolumeClaim
	volume *corev1.PersistentVolume
	// job is the object of the current generation's verification Job name, and pods the pods that carry its
	// name; classes are the GPU classes the verification pods may run beside. Read only for a DatasetMount that
	// asks for verification.
	job     *batchv1.Job
	pods    []corev1.Pod
	classes map[string]classes.Class
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

// reconcile runs one pass: observe, decide, apply the plan, then write the status, which says which write failed
// if one did. The DatasetMount's own finalizers are kept before the pass reads, and the cleanup finalizer goes
// once a deleted DatasetMount's claim and volume are gone.
func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	dsm := &aifv1.DatasetMount{}
	if err := r.Client.Get(ctx, req.NamespacedName, dsm); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	jobs, err := usersOf(ctx, r.Client, dsm)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.syncFinalizers(ctx, dsm, unfinished(jobs)); err != nil {
		return ctrl.Result{}, err
	}
	obs, err := r.observe(ctx, dsm, jobs)
	if err != nil {
		return ctrl.Result{}, err
	}
	plan, out := decide(dsm, obs, r.Config)
	if err := apply.Apply(ctx, r.Client, plan); err != nil {
		if behind(err) {
			// The claim exists and the cache does not show it yet: the pass that sees it decides, whether it is
			// the one an earlier pass made or someone else's.
			return ctrl.Result{RequeueAfter: cacheBehindRetry}, nil
		}
		return ctrl.Result{}, r.showFailure(ctx, dsm, err)
	}
	if err := r.writeStatus(ctx, dsm, ComputeStatus(dsm, obs, out)); err != nil {
		return ctrl.Result{}, err
	}
	if dsm.DeletionTimestamp != nil && len(obs.users) == 0 {
		return ctrl.Result{}, r.removeFinalizer(ctx, dsm)
	}
	return requeue(dsm, obs, out), nil
}

// cacheBehindRetry is when a pass whose create met an object the cache does not show yet runs again.
const cacheBehindRetry = time.Second

// behind reports whether a plan stopped at the create of an object that exists already.
func behind(err error) bool {
	var f *apply.Failed
	return errors.As(err, &f) && f.Verb == apply.Create && apierrors.IsAlreadyExists(err)
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
func requeue(dsm *aifv1.DatasetMount, obs *observed, out outcome) ctrl.Result {
	if obs.pathErr != nil && !obs.unsafe() {
		return ctrl.Result{RequeueAfter: time.Minute}
	}
	var after time.Duration
	if obs.granted(dsm) {
		// A folder swapped for a link after the last look is found within this time, even without an event.
		after = pathRecheck
	}
	if left := out.verify.deadline.Sub(obs.now); out.verify.running && left > 0 && (after == 0 || left < after) {
		after = left
	}
	if out.verify.again {
		after = 2 * time.Second
	}
	return ctrl.Result{RequeueAfter: after}
}

// observe reads what the pass decides from: the tenant and the namespace, the path (resolved on the operator's
// own read-only mount), and the children of the DatasetMount's names.
func (r *Reconciler) observe(ctx context.Context, dsm *aifv1.DatasetMount, jobs []aifv1.TrainingJob) (*observed, error) {
	obs := &observed{users: unfinished(jobs), running: running(jobs), fs: datasets.Filesystem(r.Config, dsm.Spec.Filesystem), now: r.now()}
	if err := r.observeChildren(ctx, dsm, obs); err != nil {
		return nil, err
	}
	if dsm.DeletionTimestamp != nil {
		return obs, nil // a DatasetMount on its way out is only waited on and cleaned up
	}
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

// observeChildren reads the claim and the volume of the DatasetMount's names and, when it asks for verification,
// the verification Job of its generation with its pods, and the GPU classes. A claim the cache does not show is
// read from the API server.
func (r *Reconciler) observeChildren(ctx context.Context, dsm *aifv1.DatasetMount, obs *observed) error {
	var err error
	claimKey := types.NamespacedName{Namespace: dsm.Namespace, Name: ClaimName(dsm)}
	api := r.APIReader
	if dsm.DeletionTimestamp != nil {
		api = nil // only the operator's own claim is deleted, and the cache holds it
	}
	if obs.claim, err = unlabelledRead(ctx, r.Client, api, claimKey, &corev1.PersistentVolumeClaim{}); err != nil {
		return fmt.Errorf("reading claim: %w", err)
	}
	if obs.volume, err = unlabelledRead(ctx, r.Client, nil, types.NamespacedName{Name: VolumeName(dsm)}, &corev1.PersistentVolume{}); err != nil {
		return fmt.Errorf("reading volume: %w", err)
	}
	if dsm.Spec.Verification == aifv1.VerificationNone || dsm.DeletionTimestamp != nil {
		return nil
	}
	if obs.classes, err = classes.Known(ctx, r.Client); err != nil {
		return err
	}
	key := types.NamespacedName{Namespace: dsm.Namespace, Name: VerificationJobName(dsm)}
	if obs.job, err = unlabelledRead(ctx, r.Client, r.APIReader, key, &batchv1.Job{}); err != nil {
		return fmt.Errorf("reading verification job: %w", err)
	}
	if obs.job == nil {
		return nil
	}
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(dsm.Namespace), client.MatchingLabels{batchv1.JobNameLabel: key.Name}); err != nil {
		return fmt.Errorf("listing verification pods: %w", err)
	}
	obs.pods = pods.Items
	return nil
}

// unlabelled reads a namespaced child of the DatasetMount's names from the cache and, while the cache holds
// none, from the API server: the cache keeps only objects with the operator's label, and an object of that name
// that a tenant made (a claim, a Job) must be seen before the operator makes its own, so that it is reported or
// replaced rather than taken for the operator's. With api nil it reads the cache only. It returns nil, without
// an error, when there is no such object.
func unlabelledRead[T client.Object](ctx context.Context, cache, api client.Reader, key types.NamespacedName, obj T) (T, error) {
	var none T
	err := cache.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) && api != nil {
		err = api.Get(ctx, key, obj)
	}
	switch {
	case apierrors.IsNotFound(err):
		return none, nil
	case err != nil:
		return none, err
	}
	return obj, nil
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

// removeFinalizer lets a deleted DatasetMount go once no run uses it and the plan deleted its claim and volume
// (reclaim policy Retain: the data stays untouched).
func (r *Reconciler) removeFinalizer(ctx context.Context, dsm *aifv1.DatasetMount) error {
	if controllerutil.RemoveFinalizer(dsm, aifv1.CleanupFinalizer) {
		if err := r.Client.Update(ctx, dsm); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("removing finalizer: %w", err)
		}
	}
	return nil
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
