// Package v1alpha1 holds the aifactory.eu/v1alpha1 API: TenantQuota, DatasetMount and TrainingJob.
//
// The types here carry the schema (validation markers and CEL rules) that the API server enforces before any
// controller or webhook sees an object. The package imports only apimachinery and core API types.
//
// +kubebuilder:object:generate=true
// +groupName=aifactory.eu
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of this API.
var GroupVersion = schema.GroupVersion{Group: "aifactory.eu", Version: "v1alpha1"}

var (
	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&TenantQuota{}, &TenantQuotaList{},
		&DatasetMount{}, &DatasetMountList{},
		&TrainingJob{}, &TrainingJobList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
