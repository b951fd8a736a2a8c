package datasetmount

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasets"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenancy"
	"github.com/aifactory-eu/aifactory-operator/internal/safepath"
)

// DefaultClassifications are the data classes of a tenant that lists none.
var DefaultClassifications = []aifv1.DataClassification{aifv1.ClassificationPublic, aifv1.ClassificationInternal}

// ValidateDatasetMount checks what the schema cannot: that the namespace belongs to a tenant, the filesystem
// is configured, the path lies under one of the tenant's storage roots on that filesystem, ReadWrite access has
// a ReadWrite root, and the tenant may use the data class. tenant is nil when no TenantQuota lists the namespace.
func ValidateDatasetMount(dsm *aifv1.DatasetMount, tenant *aifv1.TenantQuota, cfg *configv1.Configuration) field.ErrorList {
	spec := field.NewPath("spec")
	if tenant == nil {
		return field.ErrorList{field.Forbidden(field.NewPath("metadata", "namespace"),
			fmt.Sprintf("namespace %s belongs to no TenantQuota; datasets can only be declared in a tenant's namespaces", dsm.Namespace))}
	}
	var errs field.ErrorList
	fs := datasets.Filesystem(cfg, dsm.Spec.Filesystem)
	if fs == nil {
		errs = append(errs, field.NotSupported(spec.Child("filesystem"), dsm.Spec.Filesystem, filesystemNames(cfg)))
	}
	p := dsm.Spec.Path
	if !safepath.IsClean(p) {
		errs = append(errs, field.Invalid(spec.Child("path"), p, "must be an absolute, clean path"))
		return errs
	}
	roots := rootsOn(tenant, dsm.Spec.Filesystem)
	var under []aifv1.StorageRoot
	for _, r := range roots {
		if Within(p, r.Path) {
			under = append(under, r)
		}
	}
	switch {
	case len(under) == 0:
		errs = append(errs, field.Forbidden(spec.Child("path"), fmt.Sprintf("%s is not under a storage root of tenant %s on filesystem %s (roots: %s)",
			p, tenant.Name, dsm.Spec.Filesystem, describeRoots(roots))))
	case dsm.Spec.Access == aifv1.ReadWrite && !slices.ContainsFunc(under, func(r aifv1.StorageRoot) bool { return r.Access == aifv1.ReadWrite }):
		errs = append(errs, field.Forbidden(spec.Child("access"), fmt.Sprintf("ReadWrite needs a ReadWrite storage root; %s is only under read-only roots of tenant %s", p, tenant.Name)))
	}
	allowed := tenant.Spec.DataClassifications
	if len(allowed) == 0 {
		allowed = DefaultClassifications
	}
	if !slices.Contains(allowed, dsm.Spec.Classification) {
		errs = append(errs, field.Forbidden(spec.Child("classification"), fmt.Sprintf("tenant %s may use %s data only", tenant.Name, joinClasses(allowed))))
	}
	// Roots below the path count too: a DatasetMount of /medai holds what lies in /medai/patients.
	var above []aifv1.StorageRoot
	for _, r := range roots {
		if Within(p, r.Path) || Within(r.Path, p) {
			above = append(above, r)
		}
	}
	if floor, root := classificationFloor(above); rank(dsm.Spec.Classification) < rank(floor) {
		errs = append(errs, field.Forbidden(spec.Child("classification"), fmt.Sprintf("data under %s is at least %s (set by a storage root of tenant %s); declare %s or higher",
			root, floor, tenant.Name, floor)))
	}
	if fs != nil {
		errs = append(errs, handleCharacters(spec.Child("path"), p, fs)...)
		if dsm.Spec.Access == aifv1.ReadWrite && fs.CSI != nil && fs.CSI.WholeFilesystem {
			errs = append(errs, field.Forbidden(spec.Child("access"), fmt.Sprintf("filesystem %s is mounted whole (wholeFilesystem); a writable claim of it would be held in by a subPath alone, so it offers ReadOnly datasets only",
				fs.Name)))
		}
	}
	return errs
}

// rank orders data classes from public (0) to health (3); an unset class ranks below public.
func rank(c aifv1.DataClassification) int {
	return slices.Index(aifv1.Classifications, c)
}

// classificationFloor is the highest classification that the roots set, and the root that sets it.
func classificationFloor(roots []aifv1.StorageRoot) (aifv1.DataClassification, string) {
	var floor aifv1.DataClassification
	root := ""
	for _, r := range roots {
		if r.Classification != "" && rank(r.Classification) > rank(floor) {
			floor, root = r.Classification, r.Path
		}
	}
	return floor, root
}

// handleCharacters refuses path characters that could change the meaning of a CSI volume handle or attribute
// the path is put into: only ASCII letters, digits and the filesystem's pathCharacters may enter.
func handleCharacters(p *field.Path, path string, fs *configv1.Filesystem) field.ErrorList {
	if fs.CSI == nil || !usesPath(fs.CSI) {
		return nil
	}
	allowed := fs.CSI.PathCharacters
	if allowed == "" {
		allowed = configv1.DefaultPathCharacters
	}
	for _, r := range path {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || strings.ContainsRune(allowed, r) {
			continue
		}
		return field.ErrorList{field.Invalid(p, path, fmt.Sprintf("character %q cannot enter the volume handle of filesystem %s (driver %s); allowed are letters, digits and %q",
			r, fs.Name, fs.CSI.Driver, allowed))}
	}
	return nil
}

func usesPath(c *configv1.CSIFilesystem) bool {
	if strings.Contains(c.VolumeHandle, configv1.PathPlaceholder) {
		return true
	}
	for _, v := range c.VolumeAttributes {
		if strings.Contains(v, configv1.PathPlaceholder) {
			return true
		}
	}
	return false
}

// Within reports whether the clean absolute path p is root or lies below it: /medai admits /medai/x but not
// /medai-other.
func Within(p, root string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+"/")
}

func rootsOn(tq *aifv1.TenantQuota, fs string) []aifv1.StorageRoot {
	var out []aifv1.StorageRoot
	for _, r := range tq.Spec.Storage {
		if r.Filesystem == fs {
			out = append(out, r)
		}
	}
	return out
}

func describeRoots(roots []aifv1.StorageRoot) string {
	if len(roots) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(roots))
	for _, r := range roots {
		parts = append(parts, fmt.Sprintf("%s %s", r.Path, r.Access))
	}
	return strings.Join(parts, ", ")
}

func filesystemNames(cfg *configv1.Configuration) []string {
	out := make([]string, 0, len(cfg.Filesystems))
	for _, f := range cfg.Filesystems {
		out = append(out, f.Name)
	}
	return out
}

func joinClasses(cs []aifv1.DataClassification) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, string(c))
	}
	return strings.Join(parts, ", ")
}

// +kubebuilder:webhook:path=/validate-aifactory-eu-v1alpha1-datasetmount,mutating=false,failurePolicy=fail,sideEffects=None,groups=aifactory.eu,resources=datasetmounts,verbs=create;update,versions=v1alpha1,name=vdatasetmount.aifactory.eu,admissionReviewVersions=v1

// Validator is the DatasetMount admission webhook.
type Validator struct {
	Reader client.Reader
	Config *configv1.Configuration
}

var _ admission.Validator[*aifv1.DatasetMount] = &Validator{}

// ValidateCreate checks a new DatasetMount, and resolves its path on the filesystem: a path through a symbolic
// link or a file is refused; one that does not exist yet is admitted with a warning.
func (v *Validator) ValidateCreate(ctx context.Context, dsm *aifv1.DatasetMount) (admission.Warnings, error) {
	if err := v.validate(ctx, dsm); err != nil {
		return nil, err
	}
	switch err := checkPathWithin(v.Config, dsm, pathTimeout); {
	case err == nil:
		return nil, nil
	case safepath.IsMissing(err):
		return admission.Warnings{fmt.Sprintf("spec.path: %v; the DatasetMount becomes Ready once it exists", err)}, nil
	case datasets.IsPathError(err):
		return nil, apierrors.NewInvalid(aifv1.GroupVersion.WithKind("DatasetMount").GroupKind(), dsm.Name,
			field.ErrorList{field.Forbidden(field.NewPath("spec", "path"), fmt.Sprintf("%v: dataset paths are resolved without following symbolic links", err))})
	default:
		return admission.Warnings{fmt.Sprintf("spec.path: the operator cannot resolve it now: %v", err)}, nil
	}
}

// ValidateUpdate checks a DatasetMount whose spec changed; the schema already keeps filesystem, path and access
// fixed. Updates that leave the spec alone (finalizers, labels) always pass, so that the operator can protect or
// release a dataset even after the tenant's roots changed under it.
func (v *Validator) ValidateUpdate(ctx context.Context, old, dsm *aifv1.DatasetMount) (admission.Warnings, error) {
	if dsm.DeletionTimestamp != nil || equality.Semantic.DeepEqual(old.Spec, dsm.Spec) {
		return nil, nil
	}
	return nil, v.validate(ctx, dsm)
}

// ValidateDelete allows every deletion; the in-use finalizer protects datasets that jobs still use.
func (v *Validator) ValidateDelete(context.Context, *aifv1.DatasetMount) (admission.Warnings, error) {
	return nil, nil
}

func (v *Validator) validate(ctx context.Context, dsm *aifv1.DatasetMount) error {
	tenant, err := tenancy.Of(ctx, v.Reader, dsm.Namespace)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if errs := ValidateDatasetMount(dsm, tenant, v.Config); len(errs) > 0 {
		return apierrors.NewInvalid(aifv1.GroupVersion.WithKind("DatasetMount").GroupKind(), dsm.Name, errs)
	}
	return nil
}
