package tenantquota

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
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
