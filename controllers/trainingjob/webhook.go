package trainingjob

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	cradmission "sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasets"
	"github.com/aifactory-eu/aifactory-operator/controllers/index"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenancy"
)

// +kubebuilder:webhook:path=/validate-aifactory-eu-v1alpha1-trainingjob,mutating=false,failurePolicy=fail,sideEffects=None,groups=aifactory.eu,resources=trainingjobs,verbs=create;update,versions=v1alpha1,name=vtrainingjob.aifactory.eu,admissionReviewVersions=v1

// Validator is the TrainingJob admission webhook: it holds every run to its tenant's pod policy.
type Validator struct {
	Reader client.Reader
	Config *configv1.Configuration
}

var _ cradmission.Validator[*aifv1.TrainingJob] = &Validator{}

// ValidateCreate checks a new TrainingJob.
func (v *Validator) ValidateCreate(ctx context.Context, tj *aifv1.TrainingJob) (cradmission.Warnings, error) {
	return nil, v.validate(ctx, tj)
}

// ValidateUpdate checks a TrainingJob whose spec changed. Updates that leave the spec alone (labels, finalizers,
// deletion) always pass, so that a run admitted under an older policy can still be followed and removed.
func (v *Validator) ValidateUpdate(ctx context.Context, old, tj *aifv1.TrainingJob) (cradmission.Warnings, error) {
	if tj.DeletionTimestamp != nil || equality.Semantic.DeepEqual(old.Spec, tj.Spec) {
		return nil, nil
	}
	return nil, v.validate(ctx, tj)
}

// ValidateDelete allows every deletion.
func (v *Validator) ValidateDelete(context.Context, *aifv1.TrainingJob) (cradmission.Warnings, error) {
	return nil, nil
}

func (v *Validator) validate(ctx context.Context, tj *aifv1.TrainingJob) error {
	tenant, err := tenancy.Of(ctx, v.Reader, tj.Namespace)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	// The configured classes are known from the start; discovered ones once their flavor exists.
	known, err := classes.Known(ctx, v.Reader)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	for _, c := range classes.FromConfig(v.Config) {
		known[c.Name] = c
	}
	errs := ValidateTrainingJob(tj, tenant, v.Config, known)
	if fsg, err := v.fsGroupOnWholeFilesystems(ctx, tj); err != nil {
		return apierrors.NewInternalError(err)
	} else if fsg != "" {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "template", "spec", "securityContext", "fsGroup"), fsg))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(aifv1.GroupVersion.WithKind("TrainingJob").GroupKind(), tj.Name, errs)
	}
	return nil
}

// fsGroupOnWholeFilesystems says why a template's fsGroup cannot go with the run's DatasetMounts that exist
// now; the controller checks again before each attempt, for DatasetMounts declared after the run.
func (v *Validator) fsGroupOnWholeFilesystems(ctx context.Context, tj *aifv1.TrainingJob) (string, error) {
	if sc := tj.Spec.Template.Spec.SecurityContext; sc == nil || sc.FSGroup == nil {
		return "", nil
	}
	for _, name := range index.DatasetsOf(tj) {
		d := &aifv1.DatasetMount{}
		switch err := v.Reader.Get(ctx, client.ObjectKey{Namespace: tj.Namespace, Name: name}, d); {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return "", err
		}
		if msg := datasets.FSGroupConflict(d, v.Config); msg != "" {
			return msg, nil
		}
	}
	return "", nil
}
