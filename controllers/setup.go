// Package controllers wires the operator's controllers and webhooks into a controller-runtime manager.
package controllers

import (
	"context"
	"fmt"

	kueuev1beta2 "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount"
	"github.com/aifactory-eu/aifactory-operator/controllers/gpuclass"
	"github.com/aifactory-eu/aifactory-operator/controllers/index"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenantquota"
	"github.com/aifactory-eu/aifactory-operator/controllers/trainingjob"
)

// Leader election among manager replicas, in the operator's own namespace only.
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=aifactory-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,namespace=aifactory-system,resources=events,verbs=create;patch

// Access that the manager's metrics endpoint needs to authenticate and authorize its scrapers.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// NewScheme returns a scheme with every type the operator reads or writes.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(batchv1.AddToScheme(s))
	utilruntime.Must(aifv1.AddToScheme(s))
	utilruntime.Must(kueuev1beta2.AddToScheme(s))
	return s
}

// Options are what the controllers share beyond the manager.
type Options struct {
	// Config is the operator configuration.
	Config *configv1.Configuration
	// Clock tells the time of budget periods, the ledger and run deadlines; nil means the real clock.
	Clock clock.PassiveClock
}

// Setup registers the operator's controllers with the manager.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) error {
	cfg, c := o.Config, apply.Logged(mgr.GetClient())
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if err := index.Register(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	if err := (&gpuclass.Reconciler{Client: c, Config: cfg}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("gpuclass: %w", err)
	}
	tq := &tenantquota.Reconciler{Client: c, Config: cfg, Clock: o.Clock, Recorder: mgr.GetEventRecorder("tenantquota")}
	if err := tq.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("tenantquota: %w", err)
	}
	dsm := &datasetmount.Reconciler{Client: c, APIReader: mgr.GetAPIReader(), Config: cfg, Clock: o.Clock, Recorder: mgr.GetEventRecorder("datasetmount")}
	if err := dsm.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("datasetmount: %w", err)
	}
	if err := (&trainingjob.Reconciler{Client: c, Config: cfg, Clock: o.Clock, Recorder: mgr.GetEventRecorder("trainingjob")}).SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("trainingjob: %w", err)
	}
	return nil
}

// CacheOptions scopes the manager's informers: Kueue queues and flavors, volumes, claims, Jobs, Services and pods to those
// the operator manages, and nodes to GPU nodes (those with GPU Feature Discovery's product label).
func CacheOptions() cache.Options {
	managed := labels.SelectorFromSet(labels.Set{aifv1.ManagedByLabel: aifv1.ManagedByValue})
	gpuNodes, err := labels.Parse(classes.ProductLabel)
	utilruntime.Must(err)
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&kueuev1beta2.ClusterQueue{}:    {Label: managed},
		&kueuev1beta2.LocalQueue{}:      {Label: managed},
		&kueuev1beta2.ResourceFlavor{}:  {Label: managed},
		&kueuev1beta2.AdmissionCheck{}:  {Label: managed},
		&corev1.PersistentVolume{}:      {Label: managed},
		&corev1.PersistentVolumeClaim{}: {Label: managed},
		&corev1.Pod{}:                   {Label: managed},
		&batchv1.Job{}:                  {Label: managed},
		&corev1.Service{}:               {Label: managed},
		&corev1.Node{}:                  {Label: gpuNodes},
	}}
}
