// Package controllers wires the operator's controllers and webhooks into a controller-runtime manager.
package controllers

import (
	"fmt"

	kueuev1beta2 "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenantquota"
	"github.com/aifactory-eu/aifactory-operator/controllers/trainingjob"
)

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

// Setup registers the operator's controllers with the manager.
func Setup(mgr ctrl.Manager, cfg *configv1.Configuration) error {
	c := mgr.GetClient()
	if err := (&tenantquota.Reconciler{Client: c, Config: cfg}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("tenantquota: %w", err)
	}
	if err := (&datasetmount.Reconciler{Client: c, Config: cfg}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("datasetmount: %w", err)
	}
	if err := (&trainingjob.Reconciler{Client: c, Config: cfg}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("trainingjob: %w", err)
	}
	return nil
}
