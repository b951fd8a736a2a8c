package datasetmount

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasets"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

// The writes of a DatasetMount's pass, as data: which, in which order, and what the status is told.
func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cfg := &configv1.Configuration{}
	configv1.SetDefaults(cfg)
	cfg.Verification.Image = "operator:1"
	fs := &configv1.Filesystem{Name: "scratch", HostPath: &configv1.HostPathFilesystem{Root: "/lustre/scratch"}}
	base := builders.DatasetMount("medai-dev", "xray", "/medai/xray").Verification(aifv1.VerificationContent).Obj()
	base.UID, base.Generation = "dsm-uid", 2
	claimOf := func(dsm *aifv1.DatasetMount, phase corev1.PersistentVolumeClaimPhase) *corev1.PersistentVolumeClaim {
		c := PersistentVolumeClaim(dsm)
		c.UID, c.Status.Phase = "claim-uid", phase
		return c
	}
	volumeOf := func(dsm *aifv1.DatasetMount, c *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
		return PersistentVolume(dsm, fs, c.UID)
	}
	jobOf := func(dsm *aifv1.DatasetMount) *batchv1.Job {
		j := VerificationJob(dsm, datasets.SubPath(dsm, fs), &cfg.Verification, nil)
		j.UID, j.CreationTimestamp = "job-uid", metav1.NewTime(now.Add(-time.Hour))
		return j
	}
	// podOf is a pod of the Job that ran the operator's verifier to the end with this message.
	podOf := func(job *batchv1.Job, msg string) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-x", Namespace: job.Namespace,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: ptr.To(true)}}},
			Spec: *job.Spec.Template.Spec.DeepCopy()}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: verifyContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: msg}}}}
		return p
	}
	finished := func(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.Job {
		j.Status.Conditions = []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue}}
		return j
	}
	bound := claimOf(base, corev1.ClaimBound)
	type step struct {
		Verb apply.Verb
		Kind string
		Name string
	}
	cases := []struct {
		name  string
		dsm   func(*aifv1.DatasetMount)
		obs   func(*observed)
		want  []step
		check func(*testing.T, outcome, apply.Plan)
	}{{
		name: "first pass: the claim alone; the volume waits for its UID",
		want: []step{{apply.Create, "PersistentVolumeClaim", ClaimName(base)}},
	}, {
		name: "the claim exists: the volume, pre-bound to the claim's UID",
		obs:  func(o *observed) { o.claim = claimOf(base, corev1.ClaimPending) },
		want: []step{{apply.Create, "PersistentVolume", VolumeName(base)}},
		check: func(t *testing.T, out outcome, plan apply.Plan) {
			if pv := plan[0].Object.(*corev1.PersistentVolume); pv.Spec.ClaimRef.UID != "claim-uid" || !plan[0].IfMissing {
				t.Errorf("claimRef UID %q, IfMissing %t", pv.Spec.ClaimRef.UID, plan[0].IfMissing)
			}
			if out.claim == nil {
				t.Error("the claim in place is not reported")
			}
		},
	}, {
		name: "a claim of the dataset's name that the operator did not make: nothing, and a conflict",
		obs: func(o *observed) {
			o.claim = claimOf(base, corev1.ClaimBound)
			o.claim.OwnerReferences = nil
		},
		check: wantConflict("claim " + ClaimName(base) + " is not this DatasetMount's"),
	}, {
		name: "a volume reserved for an earlier claim of the same name is deleted",
		obs: func(o *observed) {
			o.claim = claimOf(base, corev1.ClaimPending)
			o.volume = volumeOf(base, o.claim)
			o.volume.Spec.ClaimRef.UID = "earlier-claim"
		},
		want: []step{{apply.Delete, "PersistentVolume", VolumeName(base)}},
	}, {
		name: "a volume still bound to the claim of an earlier DatasetMount of the same name: nothing, and a conflict",
		obs: func(o *observed) {
			o.claim = claimOf(base, corev1.ClaimPending)
			o.volume = volumeOf(base, o.claim)
			o.volume.Annotations[UIDAnnotation] = "earlier-dsm"
			o.volume.Spec.ClaimRef.UID, o.volume.Status.Phase = "earlier-claim", corev1.VolumeBound
		},
		check: wantConflict("is bound to an earlier DatasetMount's claim"),
	}, {
		name: "a volume whose source changed is replaced, claim first, once no run uses it",
		obs: func(o *observed) {
			o.claim = bound
			o.volume = volumeOf(base, bound)
			o.volume.Spec.HostPath.Path = "/elsewhere"
		},
		want: []step{{apply.Delete, "PersistentVolumeClaim", ClaimName(base)}, {apply.Delete, "PersistentVolume", VolumeName(base)}},
	}, {
		name: "a bound claim: the verification Job of this generation",
		obs:  func(o *observed) { o.claim, o.volume = bound, volumeOf(base, bound) },
		want: []step{{apply.Create, "Job", VerificationJobName(base)}},
		check: func(t *testing.T, out outcome, _ apply.Plan) {
			if !out.verify.running || !out.verify.deadline.Equal(now.Add(deadlineOf(cfg))) {
				t.Errorf("verification %+v, want running until %s", out.verify, now.Add(deadlineOf(cfg)))
			}
		},
	}, {
		name: "a Job of the verification's name that is not the operator's is deleted, and the pass comes back soon",
		obs: func(o *observed) {
			o.claim, o.volume, o.job = bound, volumeOf(base, bound), jobOf(base)
			o.job.Annotations[VerificationSpecAnnotation] = "another"
		},
		want: []step{{apply.Delete, "Job", VerificationJobName(base)}},
		check: func(t *testing.T, out outcome, plan apply.Plan) {
			if !out.verify.again || len(plan[0].DeleteOptions) == 0 {
				t.Errorf("again = %t, delete options %v", out.verify.again, plan[0].DeleteOptions)
			}
		},
	}, {
		name: "a finished verification is read from the pod that ran the operator's verifier, and nothing is written",
		obs: func(o *observed) {
			o.claim, o.volume, o.job = bound, volumeOf(base, bound), finished(jobOf(base), batchv1.JobComplete)
			forged := podOf(o.job, `{"digest":"sha256:forged","files":1}`)
			forged.Name, forged.Spec.Containers[0].Args = "a-forged", []string{"--root=/"}
			o.pods = []corev1.Pod{forged, podOf(o.job, `{"digest":"sha256:abc","files":3,"bytes":10,"mode":"Content"}`)}
		},
		check: func(t *testing.T, out outcome, _ apply.Plan) {
			if r := out.verify.result; r == nil || r.Digest != "sha256:abc" {
				t.Errorf("result %+v, want the operator's pod's digest", r)
			}
		},
	}, {
		name: "a verification past its deadline fails first; the Job stays until the failure is in status",
		obs: func(o *observed) {
			o.claim, o.volume, o.job = bound, volumeOf(base, bound), jobOf(base)
			o.now = o.job.CreationTimestamp.Add(deadlineOf(cfg))
		},
		check: func(t *testing.T, out outcome, _ apply.Plan) {
			if !strings.Contains(out.verify.failure, "did not finish within") {
				t.Errorf("failure %q", out.verify.failure)
			}
		},
	}, {
		name: "then the overdue Job is deleted",
		dsm: func(d *aifv1.DatasetMount) {
			apimeta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{Type: aifv1.ConditionVerified, Status: metav1.ConditionFalse,
				Reason: aifv1.ReasonVerificationFailed, Message: "the verification did not finish", ObservedGeneration: d.Generation})
		},
		obs:  func(o *observed) { o.claim, o.volume, o.job = bound, volumeOf(base, bound), jobOf(base) },
		want: []step{{apply.Delete, "Job", VerificationJobName(base)}},
	}, {
		name: "revoked while a run reads: the claim and the volume stay",
		obs: func(o *observed) {
			o.claim, o.volume, o.users, o.running = bound, volumeOf(base, bound), []string{"reader"}, []string{"reader"}
			o.invalid = field.ErrorList{field.Forbidden(field.NewPath("spec", "path"), "outside the tenant's roots")}
		},
	}, {
		name: "revoked and no run running: the claim, then the volume",
		obs: func(o *observed) {
			o.claim, o.volume, o.users = bound, volumeOf(base, bound), []string{"queued"}
			o.invalid = field.ErrorList{field.Forbidden(field.NewPath("spec", "path"), "outside the tenant's roots")}
		},
		want: []step{{apply.Delete, "PersistentVolumeClaim", ClaimName(base)}, {apply.Delete, "PersistentVolume", VolumeName(base)}},
	}, {
		name: "a path that is missing for now: nothing is made and nothing goes",
		obs: func(o *observed) {
			o.claim, o.volume = bound, volumeOf(base, bound)
			o.pathErr = errors.New("no such file or directory")
		},
	}, {
		name: "deleted while a run uses it: nothing goes",
		dsm:  func(d *aifv1.DatasetMount) { d.DeletionTimestamp = &metav1.Time{Time: now} },
		obs:  func(o *observed) { o.claim, o.volume, o.users = bound, volumeOf(base, bound), []string{"trainer"} },
	}, {
		name: "deleted and unused: the claim, then the volume; someone else's claim is left alone",
		dsm:  func(d *aifv1.DatasetMount) { d.DeletionTimestamp = &metav1.Time{Time: now} },
		obs: func(o *observed) {
			o.claim, o.volume = bound.DeepCopy(), volumeOf(base, bound)
			o.claim.OwnerReferences = nil
		},
		want: []step{{apply.Delete, "PersistentVolume", VolumeName(base)}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dsm := base.DeepCopy()
			if tc.dsm != nil {
				tc.dsm(dsm)
			}
			obs := &observed{fs: fs, tenant: "medai", now: now}
			if tc.obs != nil {
				tc.obs(obs)
			}
			plan, out := decide(dsm, obs, cfg)
			var got []step
			for _, w := range plan {
				got = append(got, step{w.Verb, fmt.Sprintf("%T", w.Object)[len("*v1."):], w.Object.GetName()})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if tc.check != nil {
				tc.check(t, out, plan)
			}
		})
	}
}

func wantConflict(prefix string) func(*testing.T, outcome, apply.Plan) {
	return func(t *testing.T, out outcome, _ apply.Plan) {
		if !strings.Contains(out.conflict, prefix) || out.claim != nil {
			t.Errorf("conflict %q (want %q), claim %v", out.conflict, prefix, out.claim)
		}
	}
}

// A DatasetMount being deleted keeps its status, and says which runs hold it.
func TestComputeStatusWhileDeleted(t *testing.T) {
	dsm := builders.DatasetMount("medai-dev", "xray", "/medai/xray").Obj()
	dsm.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	dsm.Status.ClaimName = ClaimName(dsm)
	st := ComputeStatus(dsm, &observed{users: []string{"a", "b"}}, outcome{})
	ready := apimeta.FindStatusCondition(st.Conditions, aifv1.ConditionReady)
	if ready == nil || ready.Reason != aifv1.ReasonInUse || ready.Message != "deletion waits for TrainingJobs that use the dataset: a, b" || st.ClaimName != dsm.Status.ClaimName {
		t.Errorf("status %+v", st)
	}
	if st := ComputeStatus(dsm, &observed{}, outcome{}); !cmp.Equal(st, dsm.Status) {
		t.Errorf("unused: the status changed: %s", cmp.Diff(dsm.Status, st))
	}
}
