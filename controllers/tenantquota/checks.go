package tenantquota

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
)

// grants remembers the budget checks this process turned Ready whose change the cache has not shown yet, so
// that a pass on a stale cache still counts their reservations. An entry holds the resource version the grant
// was written against: while the cache shows that version, the grant is not in it yet; any other version is
// the grant or a later change, and the cache is trusted again.
type grants struct {
	mu     sync.Mutex
	before map[types.UID]string
}

func (g *grants) add(uid types.UID, rv string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.before == nil {
		g.before = map[types.UID]string{}
	}
	g.before[uid] = rv
}

// pending reports whether a grant of wl is written but not yet in the cache, and forgets grants the cache shows.
func (g *grants) pending(wl *kueue.Workload) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	rv, ok := g.before[wl.UID]
	if ok && rv != wl.ResourceVersion {
		delete(g.before, wl.UID)
		return false
	}
	return ok
}

// forget drops what is remembered of a workload whose check the cache no longer shows waiting.
func (g *grants) forget(uid types.UID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.before, uid)
}

// BudgetCheck is the AdmissionCheck that the ClusterQueues of budgeted tenants name.
func BudgetCheck() *kueue.AdmissionCheck {
	return &kueue.AdmissionCheck{
		ObjectMeta: metav1.ObjectMeta{Name: aifv1.BudgetCheckName, Labels: map[string]string{aifv1.ManagedByLabel: aifv1.ManagedByValue}},
		Spec:       kueue.AdmissionCheckSpec{ControllerName: aifv1.BudgetCheckController},
	}
}

// setChecks writes the budget check of the workloads that accounting.Reserve judged: Ready for those granted, Pending
// with the figures for those that wait (only when the message changed). The workloads' accounting is already durable
// (prepareWorkloads ran first), so a granted workload's seconds reach the ledger whatever happens next.
func (r *Reconciler) setChecks(ctx context.Context, wls []kueue.Workload, res *accounting.Reservation, now time.Time, prepared map[types.UID]bool) error {
	granted := map[types.UID]bool{}
	for _, uid := range res.Grant {
		// A workload this pass has just prepared is granted by the next pass, on the cache that shows the
		// preparation: a grant is remembered against the version it was written on (see grants).
		granted[uid] = !prepared[uid]
	}
	for i := range wls {
		wl := &wls[i]
		state, msg := kueue.CheckStateReady, "the run's GPU-hours are reserved in its tenant's budget"
		if grant, judged := granted[wl.UID]; judged && !grant {
			continue
		} else if !judged {
			var waits bool
			if msg, waits = res.Wait[wl.UID]; !waits {
				continue
			}
			state = kueue.CheckStatePending
		}
		if err := r.setCheck(ctx, wl, state, msg, now); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) setCheck(ctx context.Context, wl *kueue.Workload, state kueue.CheckState, msg string, now time.Time) error {
	orig := wl.DeepCopy()
	found := false
	for i := range wl.Status.AdmissionChecks {
		c := &wl.Status.AdmissionChecks[i]
		if c.Name != aifv1.BudgetCheckName {
			continue
		}
		found = true
		if c.State == kueue.CheckStateReady || (c.State == state && c.Message == msg) {
			return nil // a granted check is never taken back; an unchanged one is not written
		}
		if c.State != state {
			c.LastTransitionTime = metav1.NewTime(now)
		}
		c.State, c.Message = state, msg
	}
	if !found {
		return nil // Kueue adds the check's entry; until then there is nothing to answer
	}
	before := orig.ResourceVersion
	if err := r.Client.Status().Patch(ctx, wl, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("setting the budget check of workload %s/%s to %s: %w", wl.Namespace, wl.Name, state, err)
	}
	if state == kueue.CheckStateReady {
		r.grants.add(wl.UID, before)
	}
	return nil
}

// stopAtBound deactivates admitted workloads that reached their run bound and that Kueue does not stop by itself
// (no max-exec-time label, or one beyond the tenant's maximum): their reservation is spent, and the budget is
// only hard if every run ends at its bound.
func (r *Reconciler) stopAtBound(ctx context.Context, wls []kueue.Workload, res *accounting.Reservation, bounds map[types.UID]int64) error {
	stop := map[types.UID]bool{}
	for _, uid := range res.Stop {
		stop[uid] = true
	}
	for i := range wls {
		wl := &wls[i]
		if !stop[wl.UID] || !ptr.Deref(wl.Spec.Active, true) {
			continue
		}
		patch := client.MergeFromWithOptions(wl.DeepCopy(), client.MergeFromWithOptimisticLock{})
		wl.Spec.Active = ptr.To(false)
		metav1.SetMetaDataAnnotation(&wl.ObjectMeta, aifv1.BoundReachedAnnotation, fmt.Sprint(bounds[wl.UID]))
		if err := r.Client.Patch(ctx, wl, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("stopping workload %s/%s at its run bound: %w", wl.Namespace, wl.Name, err)
		}
		if r.Recorder != nil {
			r.Recorder.Eventf(wl, nil, corev1.EventTypeWarning, "RunBoundReached", "Deactivate", "the workload was admitted for its run bound of %s; the operator stopped it",
				time.Duration(bounds[wl.UID])*time.Second)
		}
	}
	return nil
}
