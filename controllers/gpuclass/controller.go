// Package gpuclass keeps one Kueue ResourceFlavor per GPU class (see package classes).
package gpuclass

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
)

// singleton is the one request this controller handles: the whole set of classes is reconciled at once.
var singleton = reconcile.Request{NamespacedName: types.NamespacedName{Name: "gpu-classes"}}

// Reconciler keeps the managed ResourceFlavors equal to the configured and discovered GPU classes.
type Reconciler struct {
	Client client.Client
	Config *configv1.Configuration
}

// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=resourceflavors,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=clusterqueues,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch

// Observed is what a pass reads, from the cache only.
type Observed struct {
	// Nodes are the GPU nodes, when discovery is on.
	Nodes []corev1.Node
	// Flavors are the managed ResourceFlavors.
	Flavors []kueue.ResourceFlavor
	// ClusterQueues are the managed ClusterQueues, which may name a flavor.
	ClusterQueues []kueue.ClusterQueue
}

// Reconcile creates and updates the flavors of the desired classes and deletes managed flavors whose class is
// gone, once no ClusterQueue refers to them.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (ctrl.Result, error) {
	obs, err := r.observe(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, apply.Apply(ctx, r.Client, Decide(r.Config, obs))
}

func (r *Reconciler) observe(ctx context.Context) (Observed, error) {
	var nodes corev1.NodeList
	if r.Config.Discovery.Enabled {
		if err := r.Client.List(ctx, &nodes); err != nil {
			return Observed{}, fmt.Errorf("listing GPU nodes: %w", err)
		}
	}
	var flavors kueue.ResourceFlavorList
	if err := r.Client.List(ctx, &flavors, client.MatchingLabels{aifv1.ManagedByLabel: aifv1.ManagedByValue}); err != nil {
		return Observed{}, fmt.Errorf("listing resource flavors: %w", err)
	}
	var cqs kueue.ClusterQueueList
	if err := r.Client.List(ctx, &cqs); err != nil {
		return Observed{}, fmt.Errorf("listing cluster queues: %w", err)
	}
	return Observed{Nodes: nodes.Items, Flavors: flavors.Items, ClusterQueues: cqs.Items}, nil
}

// Decide plans the writes of a pass: the flavors of the desired classes created or brought up to date, in the
// classes' order, then the flavors of classes that are gone deleted, by name, unless a ClusterQueue still
// names them (deleting those would leave the queue inactive; the queue's change brings the pass back).
func Decide(cfg *configv1.Configuration, obs Observed) apply.Plan {
	existing := map[string]*kueue.ResourceFlavor{}
	for i := range obs.Flavors {
		existing[obs.Flavors[i].Name] = &obs.Flavors[i]
	}
	var plan apply.Plan
	for _, c := range classes.Desired(cfg, obs.Nodes) {
		rf, ok := existing[c.Name]
		delete(existing, c.Name)
		if !ok {
			plan = append(plan, apply.Write{Verb: apply.Create, Object: classes.Flavor(c), IfMissing: true, Why: "GPU class " + c.Name})
			continue
		}
		updated := rf.DeepCopy()
		classes.ApplyFlavor(updated, c)
		if !equality.Semantic.DeepEqual(rf, updated) {
			plan = append(plan, apply.Write{Verb: apply.Update, Object: updated, Current: rf, Why: "GPU class " + c.Name + " changed"})
		}
	}
	used := FlavorsInUse(obs.ClusterQueues)
	for _, name := range slices.Sorted(maps.Keys(existing)) {
		if rf := existing[name]; !used[name] && rf.DeletionTimestamp == nil {
			plan = append(plan, apply.Write{Verb: apply.Delete, Object: rf, Why: "no such GPU class any more"})
		}
	}
	return plan
}

// FlavorsInUse returns the flavors that some ClusterQueue names.
func FlavorsInUse(cqs []kueue.ClusterQueue) map[string]bool {
	used := map[string]bool{}
	for _, cq := range cqs {
		for _, g := range cq.Spec.ResourceGroups {
			for _, f := range g.Flavors {
				used[string(f.Name)] = true
			}
		}
	}
	return used
}

// SetupWithManager registers the controller. Any change of a managed flavor, a GPU node or a ClusterQueue's
// spec triggers one pass over all classes.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{singleton}
	})
	managed := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[aifv1.ManagedByLabel] == aifv1.ManagedByValue
	})
	b := ctrl.NewControllerManagedBy(mgr).Named("gpuclass").
		WatchesRawSource(startupSource()).
		Watches(&kueue.ResourceFlavor{}, all, builder.WithPredicates(managed)).
		Watches(&kueue.ClusterQueue{}, all, builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	if r.Config.Discovery.Enabled {
		b = b.Watches(&corev1.Node{}, all, builder.WithPredicates(nodeChanged()))
	}
	if err := b.Complete(r); err != nil {
		return fmt.Errorf("setting up the gpuclass controller: %w", err)
	}
	return nil
}

// startupSource enqueues one pass when the controller starts, so that configured classes get their flavors
// before anything else happens.
func startupSource() source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		q.Add(singleton)
		return nil
	})
}

// nodeChanged passes node events that can change the discovered classes: not the periodic status heartbeats.
func nodeChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldNode, ok1 := e.ObjectOld.(*corev1.Node)
			newNode, ok2 := e.ObjectNew.(*corev1.Node)
			if !ok1 || !ok2 {
				return true
			}
			return !equality.Semantic.DeepEqual(oldNode.Labels, newNode.Labels) ||
				!equality.Semantic.DeepEqual(oldNode.Status.Capacity, newNode.Status.Capacity)
		},
	}
}
