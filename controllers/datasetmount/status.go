package datasetmount

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasets"
	"github.com/aifactory-eu/aifactory-operator/controllers/progress"
)

// ComputeStatus derives a DatasetMount's status from what one pass observed and decided. It starts from the old
// status so that condition transition times and an earlier manifest survive. A DatasetMount being deleted keeps
// its status, and says so while runs hold it.
func ComputeStatus(dsm *aifv1.DatasetMount, obs *observed, out outcome) aifv1.DatasetMountStatus {
	st := *dsm.Status.DeepCopy()
	if dsm.DeletionTimestamp != nil {
		if len(obs.users) > 0 {
			apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: aifv1.ConditionReady, Status: metav1.ConditionFalse,
				Reason: aifv1.ReasonInUse, ObservedGeneration: dsm.Generation,
				Message: "deletion waits for TrainingJobs that use the dataset: " + strings.Join(obs.users, ", ")})
		}
		return st
	}
	st.ObservedGeneration = dsm.Generation
	if obs.granted(dsm) {
		st.VolumeName, st.ClaimName = VolumeName(dsm), ClaimName(dsm)
		st.SubPath = datasets.SubPath(dsm, obs.fs)
		if st.Tenant == "" {
			st.Tenant = obs.tenant
		}
	} else {
		st.VolumeName, st.ClaimName, st.SubPath = "", "", ""
	}
	ready := readyCondition(dsm, obs, out)
	ready.ObservedGeneration = dsm.Generation
	apimeta.SetStatusCondition(&st.Conditions, ready)
	if v, ok := verifiedCondition(dsm, out.verify); ok {
		v.ObservedGeneration = dsm.Generation
		apimeta.SetStatusCondition(&st.Conditions, v)
	}
	if r := out.verify.result; r != nil {
		st.Manifest = &aifv1.Manifest{Digest: r.Digest, Files: r.Files, Bytes: r.Bytes,
			Mode: aifv1.VerificationMode(r.Mode), VerifiedAt: metav1.NewTime(r.VerifiedAt)}
	}
	state, why := stateOf(dsm, st.Conditions)
	progress.Set(&st.Conditions, dsm.Generation, state, why.Reason, why.Message)
	return st
}

// stateOf reads kstatus's view of a dataset: done once its claim is bound and any verification it asks for
// succeeded, stuck when it is refused or its verification failed, and otherwise still getting there. It also
// returns the condition that explains it.
func stateOf(dsm *aifv1.DatasetMount, conds []metav1.Condition) (progress.State, metav1.Condition) {
	ready := apimeta.FindStatusCondition(conds, aifv1.ConditionReady)
	verified := apimeta.FindStatusCondition(conds, aifv1.ConditionVerified)
	switch {
	case datasets.RevokedReason(ready.Reason), ready.Reason == aifv1.ReasonClaimConflict:
		return progress.Stuck, *ready
	case verified != nil && verified.Reason == aifv1.ReasonVerificationFailed:
		return progress.Stuck, *verified
	case ready.Status != metav1.ConditionTrue:
		return progress.Working, *ready
	case dsm.Spec.Verification != "" && dsm.Spec.Verification != aifv1.VerificationNone && (verified == nil || verified.Status != metav1.ConditionTrue):
		if verified == nil {
			return progress.Working, *ready
		}
		return progress.Working, *verified
	}
	return progress.Done, *ready
}

func readyCondition(dsm *aifv1.DatasetMount, obs *observed, out outcome) metav1.Condition {
	c := metav1.Condition{Type: aifv1.ConditionReady, Status: metav1.ConditionFalse}
	switch {
	case obs.noTenant:
		c.Reason, c.Message = aifv1.ReasonNoTenant, obs.invalid.ToAggregate().Error()
	case hasField(obs.invalid, "spec.filesystem"):
		c.Reason, c.Message = aifv1.ReasonFilesystemUnknown, obs.invalid.ToAggregate().Error()
	case len(obs.invalid) > 0:
		c.Reason, c.Message = aifv1.ReasonNotPermitted, obs.invalid.ToAggregate().Error()
	case obs.tenantChanged(dsm):
		c.Reason = aifv1.ReasonTenantChanged
		c.Message = fmt.Sprintf("namespace %s moved from TenantQuota %s to %s; what %s granted is revoked: delete this DatasetMount and declare it again",
			dsm.Namespace, dsm.Status.Tenant, obs.tenant, dsm.Status.Tenant)
	case obs.unsafe():
		c.Reason = aifv1.ReasonPathUnsafe
		c.Message = fmt.Sprintf("spec.path: %v; dataset paths are resolved without following symbolic links", obs.pathErr)
	case obs.pathErr != nil:
		c.Reason, c.Message = aifv1.ReasonPathUnavailable, fmt.Sprintf("spec.path: %v; the operator looks again every minute", obs.pathErr)
	case obs.unlabelled:
		c.Reason = aifv1.ReasonClaimPending
		c.Message = fmt.Sprintf("namespace %s does not carry the label %s=%s yet; the claim is made once it does", dsm.Namespace, aifv1.TenantLabel, obs.tenant)
	case out.conflict != "":
		c.Reason, c.Message = aifv1.ReasonClaimConflict, out.conflict
	case out.claim == nil || out.claim.Status.Phase != corev1.ClaimBound:
		c.Reason = aifv1.ReasonClaimPending
		c.Message = fmt.Sprintf("claim %s waits to be bound to volume %s", ClaimName(dsm), VolumeName(dsm))
	default:
		c.Status, c.Reason = metav1.ConditionTrue, aifv1.ReasonClaimBound
		c.Message = fmt.Sprintf("claim %s is bound to volume %s (%s)", ClaimName(dsm), VolumeName(dsm), dsm.Spec.Access)
	}
	return c
}

// verifiedCondition returns the Verified condition, or false to keep the one in status (verification of this
// generation already finished).
func verifiedCondition(dsm *aifv1.DatasetMount, v verification) (metav1.Condition, bool) {
	c := metav1.Condition{Type: aifv1.ConditionVerified, Status: metav1.ConditionFalse}
	switch {
	case dsm.Spec.Verification == aifv1.VerificationNone:
		c.Reason, c.Message = aifv1.ReasonVerificationDisabled, "spec.verification is None"
	case v.result != nil:
		c.Status, c.Reason = metav1.ConditionTrue, aifv1.ReasonVerificationSucceeded
		c.Message = fmt.Sprintf("%s digest %s over %d files, %d bytes", v.result.Mode, v.result.Digest, v.result.Files, v.result.Bytes)
	case v.failure != "":
		c.Reason, c.Message = aifv1.ReasonVerificationFailed, v.failure
	case v.running:
		c.Reason, c.Message = aifv1.ReasonVerificationRunning, fmt.Sprintf("job %s computes the %s digest", VerificationJobName(dsm), dsm.Spec.Verification)
		if v.waiting != "" {
			c.Message += "; " + v.waiting
		}
	case verificationFinal(dsm):
		return c, false
	default:
		c.Reason, c.Message = aifv1.ReasonVerificationPending, "verification starts once the claim is bound"
	}
	return c, true
}

func hasField(errs field.ErrorList, f string) bool {
	for _, e := range errs {
		if strings.HasPrefix(e.Field, f) {
			return true
		}
	}
	return false
}
