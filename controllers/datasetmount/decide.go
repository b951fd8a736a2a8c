package datasetmount

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount/manifest"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasets"
	"github.com/aifactory-eu/aifactory-operator/controllers/jobs"
)

// outcome is what decide concluded about the children, for the status.
type outcome struct {
	// claim is the DatasetMount's own claim once its volume is in place; nil before, and while either is
	// being replaced.
	claim *corev1.PersistentVolumeClaim
	// conflict says why the claim or the volume cannot be made (a claim of that name is not the operator's).
	conflict string
	verify   verification
}

// decide plans the writes of one pass from what it observed: for a granted DatasetMount its claim, then (on the
// pass that sees the claim, so that the volume is pre-bound to the claim's UID) its volume, then its verification;
// for a revoked one, the removal of the claim and the volume once no running run uses them; for one being deleted,
// the same once no unfinished run uses them.
func decide(dsm *aifv1.DatasetMount, obs *observed, cfg *configv1.Configuration) (apply.Plan, outcome) {
	switch {
	case dsm.DeletionTimestamp != nil:
		if len(obs.users) > 0 {
			return nil, outcome{}
		}
		return removal(dsm, obs, "the DatasetMount is deleted"), outcome{}
	case obs.granted(dsm):
		return planGranted(dsm, obs, cfg)
	case obs.pathErr != nil && !obs.unsafe(), obs.unlabelled && len(obs.invalid) == 0 && !obs.tenantChanged(dsm):
		// The path is missing or out of reach for now, or the namespace waits for its label: nothing new is
		// made, and what exists stays.
		return nil, outcome{}
	case len(obs.running) == 0:
		// Revoked: without the claim and the volume no new pod can mount the data. Runs that are still
		// running keep them until they end.
		return removal(dsm, obs, "the dataset is revoked"), outcome{}
	}
	return nil, outcome{}
}

// planGranted makes the claim, then the volume pre-bound to that claim's UID, then the verification. A claim of
// the dataset's name that the operator did not make for this DatasetMount is a conflict. A volume that can no
// longer serve the claim (reserved for an earlier claim or DatasetMount of the same name, or reaching the data
// other than the configuration says) is deleted and made again; a volume whose source changed waits for the
// runs that use it to end.
func planGranted(dsm *aifv1.DatasetMount, obs *observed, cfg *configv1.Configuration) (apply.Plan, outcome) {
	claim := obs.claim
	switch {
	case claim == nil:
		return apply.Plan{{Verb: apply.Create, Object: PersistentVolumeClaim(dsm), Why: "the dataset's claim"}}, outcome{}
	case metav1.IsControlledBy(claim, dsm) && claim.DeletionTimestamp != nil:
		return nil, outcome{} // being deleted (revoked, or its volume replaced): made again once it is gone
	case !ownsClaim(dsm, claim):
		return nil, outcome{conflict: fmt.Sprintf("claim %s is not this DatasetMount's (it is not controlled by it, or names another volume); delete it", claim.Name)}
	}
	want := PersistentVolume(dsm, obs.fs, claim.UID)
	pv := obs.volume
	switch {
	case pv == nil:
		// The name is the DatasetMount's and an existing volume's owner is checked when it is read: one that
		// exists already is the one an earlier pass made.
		return apply.Plan{{Verb: apply.Create, Object: want, IfMissing: true, Why: "the dataset's volume, pre-bound to its claim"}}, outcome{claim: claim}
	case pv.DeletionTimestamp != nil && pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.UID == claim.UID && len(obs.users) == 0:
		// Someone deleted the volume of this claim: storage protection keeps it while the claim is bound, so the
		// claim goes too, and both are made again.
		return removal(dsm, obs, "its volume was deleted"), outcome{}
	case pv.DeletionTimestamp != nil:
		return nil, outcome{} // the volume is going (an earlier claim's, or runs still use it)
	}
	stale := !ownsVolume(dsm, pv) || pv.Spec.ClaimRef == nil ||
		pv.Spec.ClaimRef.UID != "" && pv.Spec.ClaimRef.UID != claim.UID && pv.Status.Phase != corev1.VolumeBound
	switch {
	case stale && pv.Status.Phase == corev1.VolumeBound:
		return nil, outcome{conflict: fmt.Sprintf("volume %s is bound to an earlier DatasetMount's claim of the same name; it is released when that claim is gone", pv.Name)}
	case stale:
		// Reserved for a claim or a DatasetMount that is gone (its claim deleted, by hand or before an upgrade):
		// it can never bind this claim. Deleting the object leaves the data alone (Retain).
		return apply.Plan{{Verb: apply.Delete, Object: pv, Why: "a volume that can never bind the claim"}}, outcome{}
	case !sameSource(pv, want) && len(obs.users) == 0:
		return removal(dsm, obs, "the volume reaches the data other than the configuration says"), outcome{}
	}
	plan, v := planVerification(dsm, obs, cfg, claim)
	return plan, outcome{claim: claim, verify: v}
}

// removal deletes the claim, then the volume object (reclaim policy Retain: the data stays untouched), where they
// exist and are the DatasetMount's.
func removal(dsm *aifv1.DatasetMount, obs *observed, why string) apply.Plan {
	var plan apply.Plan
	if c := obs.claim; c != nil && c.DeletionTimestamp == nil && metav1.IsControlledBy(c, dsm) {
		plan = append(plan, apply.Write{Verb: apply.Delete, Object: c, Why: why})
	}
	if pv := obs.volume; pv != nil && pv.DeletionTimestamp == nil && ownsVolume(dsm, pv) {
		plan = append(plan, apply.Write{Verb: apply.Delete, Object: pv, Why: why})
	}
	return plan
}

// ownsVolume reports whether the volume was made for this DatasetMount: its namespace and name, and its UID where
// the volume records one, so that a DatasetMount declared again under the same name never adopts an old volume.
func ownsVolume(dsm *aifv1.DatasetMount, pv *corev1.PersistentVolume) bool {
	uid := pv.Annotations[UIDAnnotation]
	return pv.Annotations[NamespaceAnnotation] == dsm.Namespace && pv.Annotations[NameAnnotation] == dsm.Name &&
		(uid == "" || uid == string(dsm.UID))
}

// ownsClaim reports whether a claim is the one the operator makes for the DatasetMount: controlled by it and
// bound by name to its volume. A claim of the same name that the tenant made (directly, or as a pod's ephemeral
// volume) is not, and the volume is never made for it.
func ownsClaim(dsm *aifv1.DatasetMount, claim *corev1.PersistentVolumeClaim) bool {
	return metav1.IsControlledBy(claim, dsm) && claim.Spec.VolumeName == VolumeName(dsm)
}

// sameSource reports whether a volume reaches the data as want does: the source (handle, attributes, read-only
// flag, host path) and the access mode. Mount options are left out: volumes made before the operator added ro
// to them keep serving, read-only by their source and by the Pod webhook.
func sameSource(pv, want *corev1.PersistentVolume) bool {
	return equality.Semantic.DeepEqual(pv.Spec.PersistentVolumeSource, want.Spec.PersistentVolumeSource) && slices.Equal(pv.Spec.AccessModes, want.Spec.AccessModes)
}

// verification is the state of the current generation's verification.
type verification struct {
	running bool
	// waiting says why a running verification has not started, such as a pod that no node takes.
	waiting string
	// deadline is when a running verification fails.
	deadline time.Time
	// again asks for another pass soon (a replaced Job).
	again   bool
	result  *manifest.Result
	failure string
}

// planVerification starts the verification Job of the current generation once the claim is bound, and reads its
// result when it has finished. A verification that has not finished by its deadline fails; the pass that reads
// the failure back deletes the Job, so that a pass on a stale copy cannot make the Job again.
func planVerification(dsm *aifv1.DatasetMount, obs *observed, cfg *configv1.Configuration, claim *corev1.PersistentVolumeClaim) (apply.Plan, verification) {
	if verificationFinal(dsm) {
		return stopOverdue(dsm, obs.job), verification{}
	}
	if dsm.Spec.Verification == aifv1.VerificationNone || claim.Status.Phase != corev1.ClaimBound {
		return nil, verification{}
	}
	if cfg.Verification.Image == "" {
		return nil, verification{failure: noImage}
	}
	want := VerificationJob(dsm, datasets.SubPath(dsm, obs.fs), &cfg.Verification, obs.classes)
	job := obs.job
	if job == nil {
		return apply.Plan{{Verb: apply.Create, Object: want, IfMissing: true, Why: "the verification of this generation"}},
			verification{running: true, deadline: obs.now.Add(deadlineOf(cfg))}
	}
	if !metav1.IsControlledBy(job, dsm) || job.Annotations[VerificationSpecAnnotation] != want.Annotations[VerificationSpecAnnotation] {
		// Not the Job the operator makes now: someone else's Job of that name, or one of an earlier version of the
		// operator (another image). It is replaced, and the verification starts again. The Job may not be the
		// DatasetMount's, so its deletion brings no event: the pass looks again shortly.
		v := verification{running: true, waiting: fmt.Sprintf("job %s did not run the operator's verification; it is made again", job.Name),
			deadline: obs.now.Add(deadlineOf(cfg)), again: true}
		if job.DeletionTimestamp != nil {
			return nil, v
		}
		return apply.Plan{{Verb: apply.Delete, Object: job, DeleteOptions: background, Why: "a verification job that is not the operator's"}}, v
	}
	v := readVerification(job, verificationPods(obs.pods, job, want))
	v.deadline = job.CreationTimestamp.Add(deadlineOf(cfg))
	if v.running && !obs.now.Before(v.deadline) {
		why := "no node ran it"
		if v.waiting != "" {
			why = v.waiting
		}
		return nil, verification{failure: fmt.Sprintf("the verification did not finish within %s (verification.deadlineSeconds): %s", deadlineOf(cfg), why)}
	}
	return nil, v
}

var background = []client.DeleteOption{client.PropagationPolicy(metav1.DeletePropagationBackground)}

func deadlineOf(cfg *configv1.Configuration) time.Duration {
	if d := cfg.Verification.DeadlineSeconds; d != nil {
		return time.Duration(*d) * time.Second
	}
	return time.Duration(configv1.DefaultVerificationDeadlineSeconds) * time.Second
}

// noImage is the failure of a verification that could not start for want of configuration; unlike the others
// it is not final, so that a corrected configuration verifies the dataset without a change to it.
const noImage = "no verification image is configured (verification.image in the operator configuration)"

// stopOverdue deletes the current generation's verification Job if its verification failed while the Job was
// still unfinished (it ran past its deadline).
func stopOverdue(dsm *aifv1.DatasetMount, job *batchv1.Job) apply.Plan {
	c := apimeta.FindStatusCondition(dsm.Status.Conditions, aifv1.ConditionVerified)
	if c.Reason != aifv1.ReasonVerificationFailed || job == nil {
		return nil
	}
	if done, _, _ := jobFinished(job); done || job.DeletionTimestamp != nil || !metav1.IsControlledBy(job, dsm) {
		return nil
	}
	return apply.Plan{{Verb: apply.Delete, Object: job, DeleteOptions: background, Why: "the verification ran past its deadline"}}
}

// verificationFinal reports whether the current generation's verification has ended, in success or failure; it
// is not repeated until the spec changes.
func verificationFinal(dsm *aifv1.DatasetMount) bool {
	c := apimeta.FindStatusCondition(dsm.Status.Conditions, aifv1.ConditionVerified)
	if c == nil || c.ObservedGeneration != dsm.Generation {
		return false
	}
	switch c.Reason {
	case aifv1.ReasonVerificationFailed:
		return c.Message != noImage
	case aifv1.ReasonVerificationSucceeded:
		return dsm.Status.Manifest != nil && dsm.Status.Manifest.Mode == dsm.Spec.Verification
	}
	return false
}

// readVerification reads a verification Job and the pods that may speak for it.
func readVerification(job *batchv1.Job, pods []corev1.Pod) verification {
	done, failed, why := jobFinished(job)
	if !done {
		return verification{running: true, waiting: waitingFor(pods)}
	}
	msg := ""
	for _, p := range pods {
		if m, ok := resultOf(&p, !failed); ok {
			msg = m
			break
		}
	}
	if failed {
		return verification{failure: strings.TrimSpace("the verification job failed: " + why + " " + msg)}
	}
	var res manifest.Result
	if err := json.Unmarshal([]byte(msg), &res); err != nil || !strings.HasPrefix(res.Digest, "sha256:") {
		return verification{failure: fmt.Sprintf("the verification job reported no manifest: %q", msg)}
	}
	return verification{result: &res}
}

func jobFinished(job *batchv1.Job) (done, failed bool, why string) {
	c := jobs.Ended(job)
	if c == nil || c.Type == batchv1.JobComplete {
		return c != nil, false, ""
	}
	return true, true, strings.TrimSpace(c.Reason + ": " + c.Message)
}

// resultOf is the termination message of a pod's verify container, if it terminated with the expected
// outcome (exit code 0 for a success).
func resultOf(p *corev1.Pod, success bool) (string, bool) {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == verifyContainer && cs.State.Terminated != nil && (cs.State.Terminated.ExitCode == 0) == success {
			return strings.TrimSpace(cs.State.Terminated.Message), true
		}
	}
	return "", false
}

// waitingFor says why a verification pod does not run yet, if the scheduler said so.
func waitingFor(pods []corev1.Pod) string {
	for _, p := range pods {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
				return fmt.Sprintf("pod %s is not scheduled: %s", p.Name, c.Message)
			}
		}
	}
	return ""
}

// verificationPods are the pods whose result counts for the verification Job: controlled by that Job (by UID)
// and running exactly the verification the operator builds (same containers, same volumes, no ephemeral
// containers). Anyone who may create pods in the namespace can give a pod the Job's labels and even an owner
// reference to it; such a pod counts only if it runs the operator's own verifier on the dataset, and then its
// result is the true one.
func verificationPods(pods []corev1.Pod, job, want *batchv1.Job) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if metav1.IsControlledBy(&p, job) && RunsVerification(&p.Spec, &want.Spec.Template.Spec) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// RunsVerification reports whether a pod's spec runs the verification that want describes: the same single
// container (name, image or that image pinned to a digest, command, arguments, mounts), no init or ephemeral
// containers, the same volumes, user and group.
func RunsVerification(got, want *corev1.PodSpec) bool {
	if len(got.Containers) != 1 || len(want.Containers) != 1 || len(got.InitContainers) > 0 || len(got.EphemeralContainers) > 0 {
		return false
	}
	g, w := &got.Containers[0], &want.Containers[0]
	sameImage := g.Image == w.Image || strings.HasPrefix(g.Image, w.Image+"@sha256:")
	if g.Name != w.Name || !sameImage || !slices.Equal(g.Command, w.Command) || !slices.Equal(g.Args, w.Args) ||
		!equality.Semantic.DeepEqual(g.VolumeMounts, w.VolumeMounts) {
		return false
	}
	return equality.Semantic.DeepEqual(got.Volumes, want.Volumes) && identity(got.SecurityContext, g.SecurityContext) == identity(want.SecurityContext, w.SecurityContext)
}

// identity is the user and group a pod's container runs as, as far as the spec says.
func identity(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) [2]int64 {
	id := [2]int64{-1, -1}
	if pod != nil {
		id = [2]int64{ptr.Deref(pod.RunAsUser, -1), ptr.Deref(pod.RunAsGroup, -1)}
	}
	if c != nil && c.RunAsUser != nil {
		id[0] = *c.RunAsUser
	}
	if c != nil && c.RunAsGroup != nil {
		id[1] = *c.RunAsGroup
	}
	return id
}
