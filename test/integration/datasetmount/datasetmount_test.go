package datasetmount

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount/manifest"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

func TestVolumesForEachFilesystemKind(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, fs, path string
		access         aifv1.Access
		check          func(g gomega.Gomega, pv *corev1.PersistentVolume)
		subPath        string
	}{
		{"lustre", fsDatasets, "/medai/chest-xray/v3", aifv1.ReadOnly, func(g gomega.Gomega, pv *corev1.PersistentVolume) {
			g.Expect(pv.Spec.CSI.Driver).To(gomega.Equal("lustre.csi.hpe.com"))
			g.Expect(pv.Spec.CSI.VolumeHandle).To(gomega.Equal("mgs01@o2ib:/datasets/medai/chest-xray/v3"))
			g.Expect(pv.Spec.CSI.ReadOnly).To(gomega.BeTrue())
			// Read-only on the node whatever a pod asks for: CSI readOnly and the ro mount option.
			g.Expect(pv.Spec.MountOptions).To(gomega.Equal([]string{"flock", "ro"}))
		}, ""},
		{"gpfs", fsGPFS, "/medai/genomes", aifv1.ReadOnly, func(g gomega.Gomega, pv *corev1.PersistentVolume) {
			g.Expect(pv.Spec.CSI.Driver).To(gomega.Equal("spectrumscale.csi.ibm.com"))
			g.Expect(pv.Spec.CSI.VolumeHandle).To(gomega.Equal("0;0;7118073361626808055;09000B0A:5E8C3BE4;;;/ibm/projects/medai/genomes"))
		}, ""},
		{"beegfs", fsBeeGFS, "/medai/ecg", aifv1.ReadOnly, func(g gomega.Gomega, pv *corev1.PersistentVolume) {
			g.Expect(pv.Spec.CSI.Driver).To(gomega.Equal("beegfs.csi.netapp.com"))
			g.Expect(pv.Spec.CSI.VolumeHandle).To(gomega.Equal("beegfs://mgmtd.example.eu/data/medai/ecg"))
		}, ""},
		{"whole", fsWhole, "/medai/mri", aifv1.ReadOnly, func(g gomega.Gomega, pv *corev1.PersistentVolume) {
			g.Expect(pv.Spec.CSI.VolumeHandle).To(gomega.Equal("lustre-whole"))
			g.Expect(pv.Spec.CSI.VolumeAttributes).To(gomega.Equal(map[string]string{"fs": "lustre-whole"}))
		}, "medai/mri"},
		{"hostpath-rw", fsScratch, "/medai/checkpoints", aifv1.ReadWrite, func(g gomega.Gomega, pv *corev1.PersistentVolume) {
			g.Expect(pv.Spec.CSI).To(gomega.BeNil())
			g.Expect(pv.Spec.HostPath.Path).To(gomega.Equal("/lustre/scratch/medai/checkpoints"))
			g.Expect(*pv.Spec.HostPath.Type).To(gomega.Equal(corev1.HostPathDirectory))
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := builders.DatasetMount(ns, "kind-"+tc.name, tc.path).Filesystem(tc.fs).Access(tc.access).Obj()
			create(t, d)
			mode := corev1.ReadOnlyMany
			if tc.access == aifv1.ReadWrite {
				mode = corev1.ReadWriteMany
			}
			framework.Eventually(t, func(g gomega.Gomega) {
				pv := &corev1.PersistentVolume{}
				g.Expect(c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, pv)).To(gomega.Succeed())
				g.Expect(pv.Spec.PersistentVolumeReclaimPolicy).To(gomega.Equal(corev1.PersistentVolumeReclaimRetain))
				g.Expect(pv.Spec.AccessModes).To(gomega.Equal([]corev1.PersistentVolumeAccessMode{mode}))
				g.Expect(pv.Spec.ClaimRef.Name).To(gomega.Equal(datasetmount.ClaimName(d)))
				g.Expect(pv.Spec.ClaimRef.Namespace).To(gomega.Equal(ns))
				g.Expect(pv.Spec.StorageClassName).To(gomega.BeEmpty())
				tc.check(g, pv)
				pvc := &corev1.PersistentVolumeClaim{}
				g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: datasetmount.ClaimName(d)}, pvc)).To(gomega.Succeed())
				g.Expect(pvc.Spec.VolumeName).To(gomega.Equal(pv.Name))
				g.Expect(pvc.Spec.AccessModes).To(gomega.Equal([]corev1.PersistentVolumeAccessMode{mode}))
				g.Expect(*pvc.Spec.StorageClassName).To(gomega.BeEmpty())
				st := dsm(g, d.Name).Status
				g.Expect(condition(st.Conditions, aifv1.ConditionReady).Reason).To(gomega.Equal(aifv1.ReasonClaimPending))
				g.Expect(st.SubPath).To(gomega.Equal(tc.subPath))
			})
			bind(t, d)
			framework.Eventually(t, func(g gomega.Gomega) {
				ready := condition(dsm(g, d.Name).Status.Conditions, aifv1.ConditionReady)
				g.Expect(ready.Status).To(gomega.Equal(metav1.ConditionTrue))
				g.Expect(ready.Reason).To(gomega.Equal(aifv1.ReasonClaimBound))
			})
		})
	}
}

// Paths and specs that must never reach a volume: each is refused at admission, by the schema or the webhook,
// with a message naming the field.
func TestAttacksAreRefusedAtAdmission(t *testing.T) {
	ctx := context.Background()
	d := func(path string) *builders.DatasetMountBuilder { return builders.DatasetMount(ns, "attack", path) }
	in := func(namespace string, b *builders.DatasetMountBuilder) client.Object {
		o := b.Obj()
		o.Namespace = namespace
		return o
	}
	crossNS := builders.TrainingJob(ns, "cross").Dataset("gridlab/imagenet", "/data").Obj()
	escapingCkpt := builders.TrainingJob(ns, "ckpt").Checkpoint("../medai-ckpt", "/ckpt").Obj()
	cases := []struct {
		name   string
		obj    client.Object
		field  string
		reason string
	}{
		{"traversal", d("/medai/../gridlab/imagenet").Obj(), "spec.path", "'..'"},
		{"traversal at the end", d("/medai/x/..").Obj(), "spec.path", "'..'"},
		{"dot segment", d("/medai/./x").Obj(), "spec.path", "'..'"},
		{"double slash", d("//medai/x").Obj(), "spec.path", "should match"},
		{"trailing slash", d("/medai/x/").Obj(), "spec.path", "should match"},
		{"relative path", d("medai/x").Obj(), "spec.path", "should match"},
		{"NUL byte", d("/medai/x\x00/../../etc").Obj(), "spec.path", "should match"},
		{"percent-encoded dots", d("/medai/%2e%2e/gridlab").Obj(), "spec.path", "should match"},
		{"percent-encoded slash", d("/medai%2f..%2fgridlab").Obj(), "spec.path", "should match"},
		{"sibling prefix", d("/medai-other/x").Obj(), "spec.path", "not under a storage root"},
		{"longer name with the same prefix", d("/medaix").Obj(), "spec.path", "not under a storage root"},
		{"look-alike slash", d("/medai\u2215x").Obj(), "spec.path", "not under a storage root"},
		{"filesystem root", d("/").Obj(), "spec.path", "not under a storage root"},
		{"other tenant's root", d("/gridlab/imagenet").Obj(), "spec.path", "not under a storage root"},
		{"root on another filesystem", d("/medai/x").Filesystem(fsScratch).Access(aifv1.ReadOnly).Obj(), "", ""}, // allowed: RW root admits RO
		{"other tenant reaching into ours", in(otherNS, d("/medai/x")), "spec.path", "not under a storage root of tenant gridlab"},
		{"no root on that filesystem", in(otherNS, d("/gridlab/x").Filesystem(fsBeeGFS)), "spec.path", "roots: none"},
		{"ReadWrite under a read-only root", d("/medai/x").Access(aifv1.ReadWrite).Obj(), "spec.access", "needs a ReadWrite storage root"},
		{"classification not granted", d("/medai/x").Classification(aifv1.ClassificationPersonal).Obj(), "spec.classification", "may use public, internal, health"},
		{"unknown classification", d("/medai/x").Classification("secret").Obj(), "spec.classification", "Unsupported value"},
		{"unknown filesystem", d("/medai/x").Filesystem("nfs-home").Obj(), "spec.filesystem", "Unsupported value"},
		{"namespace of no tenant", in("no-tenant", d("/medai/x")), "metadata.namespace", "belongs to no TenantQuota"},
		{"cross-namespace dataset reference", crossNS, "spec.datasets[0].name", "should match"},
		{"checkpoint reference with a path", escapingCkpt, "spec.checkpoint.datasetMount", "should match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Create(ctx, tc.obj)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("a legitimate dataset was refused: %v", err)
				}
				_ = c.Delete(ctx, tc.obj)
				return
			}
			if err == nil {
				_ = c.Delete(ctx, tc.obj)
				t.Fatalf("admitted; want a refusal naming %s", tc.field)
			}
			t.Log(err)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("want Invalid naming %s with %q, got: %v", tc.field, tc.reason, err)
			}
		})
	}

	// Swapping the data under an existing DatasetMount is refused too.
	existing := builders.DatasetMount(ns, "fixed", "/medai/fixed").Obj()
	create(t, existing)
	for field, change := range map[string]func(*aifv1.DatasetMount){
		"spec.path":       func(d *aifv1.DatasetMount) { d.Spec.Path = "/medai/other" },
		"spec.filesystem": func(d *aifv1.DatasetMount) { d.Spec.Filesystem = fsGPFS },
		"spec.access":     func(d *aifv1.DatasetMount) { d.Spec.Access = aifv1.ReadWrite },
	} {
		var err error
		framework.Eventually(t, func(g gomega.Gomega) { // retried while the operator updates the object at the same time
			obj := dsm(g, "fixed")
			change(obj)
			err = c.Update(ctx, obj)
			g.Expect(apierrors.IsConflict(err)).To(gomega.BeFalse())
		})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), field) {
			t.Errorf("changing %s: want Invalid naming it, got %v", field, err)
		}
	}
}

// A DatasetMount that an unfinished TrainingJob uses keeps its in-use finalizer; deletion waits, says by whom,
// and goes on by itself when the job finishes, removing the claim and the volume object but never the data
// (reclaim policy Retain).
func TestInUseProtection(t *testing.T) {
	ctx := context.Background()
	d := builders.DatasetMount(ns, "protected", "/medai/protected").Obj()
	create(t, d)
	bind(t, d)
	tj := builders.TrainingJob(ns, "reader").Dataset("protected", "/data").Obj()
	if err := c.Create(ctx, tj); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(dsm(g, "protected").Finalizers).To(gomega.ContainElements(aifv1.InUseFinalizer, aifv1.CleanupFinalizer))
	})
	if err := c.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		ready := condition(dsm(g, "protected").Status.Conditions, aifv1.ConditionReady)
		g.Expect(ready.Reason).To(gomega.Equal(aifv1.ReasonInUse))
		g.Expect(ready.Message).To(gomega.ContainSubstring("reader"))
	})
	framework.Consistently(t, func(g gomega.Gomega) {
		g.Expect(dsm(g, "protected").DeletionTimestamp).NotTo(gomega.BeNil())
		g.Expect(c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, &corev1.PersistentVolume{})).To(gomega.Succeed())
	})

	// The job finishes: written here as its controller would once the run ends (no Job controller in envtest).
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tj), tj)).To(gomega.Succeed())
		tj.Status.Phase = aifv1.PhaseSucceeded
		g.Expect(c.Status().Update(ctx, tj)).To(gomega.Succeed())
	})
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(d), &aifv1.DatasetMount{}))).To(gomega.BeTrue())
	})
	unprotect(t, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: datasetmount.VolumeName(d)}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: datasetmount.ClaimName(d)}})
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, &corev1.PersistentVolume{}))).To(gomega.BeTrue())
		g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: datasetmount.ClaimName(d)}, &corev1.PersistentVolumeClaim{}))).To(gomega.BeTrue())
	})
}

// Children deleted by hand come back; a DatasetMount deleted before its claim binds leaves nothing behind.
func TestDeletionOrders(t *testing.T) {
	ctx := context.Background()
	d := builders.DatasetMount(ns, "orders", "/medai/orders").Obj()
	create(t, d)
	var claimUID, volumeUID string
	framework.Eventually(t, func(g gomega.Gomega) {
		pvc, pv := &corev1.PersistentVolumeClaim{}, &corev1.PersistentVolume{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: datasetmount.ClaimName(d)}, pvc)).To(gomega.Succeed())
		g.Expect(c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, pv)).To(gomega.Succeed())
		claimUID, volumeUID = string(pvc.UID), string(pv.UID)
	})
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: datasetmount.ClaimName(d)}}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: datasetmount.VolumeName(d)}}
	for _, o := range []client.Object{pvc, pv} {
		if err := c.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	unprotect(t, pvc, pv)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(pvc), pvc)).To(gomega.Succeed())
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(pv), pv)).To(gomega.Succeed())
		g.Expect(string(pvc.UID)).NotTo(gomega.Equal(claimUID))
		g.Expect(string(pv.UID)).NotTo(gomega.Equal(volumeUID))
	})
	if err := c.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(d), &aifv1.DatasetMount{}))).To(gomega.BeTrue())
	})
	framework.Gone(t, c, pvc, pv)
}

// Verification end to end: the operator starts a restricted, read-only Job running its own binary; the pod's
// termination message (written here as the kubelet would, from the real walker run on a real folder) becomes the
// DatasetMount's manifest.
func TestVerificationResultReachesStatus(t *testing.T) {
	ctx := context.Background()
	d := builders.DatasetMount(ns, "verified", "/medai/verified").Verification(aifv1.VerificationContent).Obj()
	create(t, d)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(condition(dsm(g, d.Name).Status.Conditions, aifv1.ConditionVerified).Reason).To(gomega.Equal(aifv1.ReasonVerificationPending))
	})
	bind(t, d)
	job := &batchv1.Job{}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: datasetmount.VerificationJobName(dsm(g, d.Name))}, job)).To(gomega.Succeed())
	})
	pod := job.Spec.Template.Spec
	ctr := pod.Containers[0]
	if ctr.Image != image || ctr.Args[0] != "verify-dataset" || !ctr.VolumeMounts[0].ReadOnly || !pod.Volumes[0].PersistentVolumeClaim.ReadOnly ||
		!*pod.SecurityContext.RunAsNonRoot || *ctr.SecurityContext.AllowPrivilegeEscalation || ctr.SecurityContext.Capabilities.Drop[0] != "ALL" ||
		pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || !*ctr.SecurityContext.ReadOnlyRootFilesystem {
		t.Fatalf("verification pod is not restricted and read-only: %+v", pod)
	}

	// The dataset, on a real folder, and its manifest from the real walker.
	root := t.TempDir()
	for name, content := range map[string]string{"a.dcm": "scan a", "b/c.dcm": "scan c"} {
		_ = os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := manifest.Compute(root, manifest.Content)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := json.Marshal(res)

	// What the Job controller and the kubelet would do (neither runs in envtest): a finished pod with the
	// container's termination message, and the Job marked complete.
	jobPod(t, job, "x", job.Spec.Template.Spec, 0, string(msg))
	completeVerification(t, job)
	framework.Eventually(t, func(g gomega.Gomega) {
		st := dsm(g, d.Name).Status
		g.Expect(condition(st.Conditions, aifv1.ConditionVerified).Status).To(gomega.Equal(metav1.ConditionTrue))
		g.Expect(st.Manifest).NotTo(gomega.BeNil())
		g.Expect(st.Manifest.Digest).To(gomega.Equal(res.Digest))
		g.Expect(st.Manifest.Files).To(gomega.Equal(int64(2)))
		g.Expect(st.Manifest.Bytes).To(gomega.Equal(int64(12)))
		g.Expect(st.Manifest.Mode).To(gomega.Equal(aifv1.VerificationContent))
	})
}

// A failed verification is reported with the walker's own message.
func TestVerificationFailureIsReported(t *testing.T) {
	ctx := context.Background()
	d := builders.DatasetMount(ns, "unreadable", "/medai/unreadable").Verification(aifv1.VerificationMetadata).Obj()
	create(t, d)
	bind(t, d)
	job := &batchv1.Job{}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: datasetmount.VerificationJobName(dsm(g, d.Name))}, job)).To(gomega.Succeed())
	})
	// As the kubelet and the Job controller would report a walker that could not read the dataset.
	jobPod(t, job, "x", job.Spec.Template.Spec, 1, "reading shard-7: permission denied")
	now := metav1.Now()
	job.Status.StartTime = &now
	job.Status.Failed = 1
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now},
	}
	job.Status.Ready, job.Status.Terminating = ptr.To[int32](0), ptr.To[int32](0)
	if err := c.Status().Update(ctx, job); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		st := dsm(g, d.Name).Status
		v := condition(st.Conditions, aifv1.ConditionVerified)
		g.Expect(v.Status).To(gomega.Equal(metav1.ConditionFalse))
		g.Expect(v.Reason).To(gomega.Equal(aifv1.ReasonVerificationFailed))
		g.Expect(v.Message).To(gomega.ContainSubstring("permission denied"))
		g.Expect(st.Manifest).To(gomega.BeNil())
	})
}

// A tenant that drops a storage root does not strand the DatasetMounts under it: they report NotPermitted and
// Stalled, lose their claim and volume (no run is running), and can still be protected while in use and deleted.
func TestDroppedRootRevokesTheDataset(t *testing.T) {
	ctx := context.Background()
	setupTenant := builders.TenantQuota("stranded").Namespaces("stranded").Storage(fsDatasets, "/stranded", aifv1.ReadOnly).Obj()
	if err := env.CreateNamespaces(ctx, "stranded"); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, setupTenant); err != nil {
		t.Fatal(err)
	}
	d := builders.DatasetMount("stranded", "old-data", "/stranded/old").Obj()
	create(t, d)
	pv, pvc := &corev1.PersistentVolume{}, &corev1.PersistentVolumeClaim{}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, pv)).To(gomega.Succeed())
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: datasetmount.ClaimName(d)}, pvc)).To(gomega.Succeed())
	})
	// A queued run does not keep a revoked dataset's volume; it keeps the DatasetMount itself.
	tj := builders.TrainingJob("stranded", "still-queued").Dataset("old-data", "/data").Obj()
	if err := c.Create(ctx, tj); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := &aifv1.TenantQuota{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: "stranded"}, tq)).To(gomega.Succeed())
		tq.Spec.Storage = nil
		g.Expect(c.Update(ctx, tq)).To(gomega.Succeed())
	})
	got := &aifv1.DatasetMount{}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(d), got)).To(gomega.Succeed())
		g.Expect(condition(got.Status.Conditions, aifv1.ConditionReady).Reason).To(gomega.Equal(aifv1.ReasonNotPermitted))
		g.Expect(condition(got.Status.Conditions, aifv1.ConditionStalled).Status).To(gomega.Equal(metav1.ConditionTrue))
		g.Expect(got.Status.ClaimName).To(gomega.BeEmpty())
		g.Expect(got.Finalizers).To(gomega.ContainElement(aifv1.InUseFinalizer))
	})
	framework.Gone(t, c, pvc, pv)
}

// jobPod creates a pod controlled by the Job, with the given spec, finished with the verify container's exit
// code and termination message: what the Job controller and the kubelet (neither runs in envtest) would do.
func jobPod(t *testing.T, job *batchv1.Job, suffix string, spec corev1.PodSpec, code int32, message string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p := podOf(job, suffix, spec)
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	finishPod(t, p, code, message)
	return p
}

// podOf is a pod of the Job with the given spec, as the Job controller makes it.
func podOf(job *batchv1.Job, suffix string, spec corev1.PodSpec) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: job.Namespace, Name: job.Name + "-" + suffix, Labels: map[string]string{
		batchv1.JobNameLabel: job.Name, aifv1.ManagedByLabel: aifv1.ManagedByValue},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))}},
		Spec: *spec.DeepCopy()}
}

// verificationJob creates the DatasetMount, binds its claim and returns its verification Job.
func verificationJob(t *testing.T, d *aifv1.DatasetMount) *batchv1.Job {
	t.Helper()
	create(t, d)
	bind(t, d)
	job := &batchv1.Job{}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(context.Background(), client.ObjectKey{Namespace: d.Namespace, Name: datasetmount.VerificationJobName(dsm(g, d.Name))}, job)).To(gomega.Succeed())
	})
	return job
}

// finishPod writes the status the kubelet would write for a pod whose verify container ended.
func finishPod(t *testing.T, p *corev1.Pod, code int32, message string) {
	t.Helper()
	p.Status.Phase = corev1.PodSucceeded
	if code != 0 {
		p.Status.Phase = corev1.PodFailed
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "verify", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: message}}}}
	if err := c.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// completeVerification marks the Job complete, as the Job controller would.
func completeVerification(t *testing.T, job *batchv1.Job) {
	t.Helper()
	now := metav1.Now()
	job.Status.StartTime = &now
	job.Status.CompletionTime = &now
	job.Status.Succeeded = 1
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	job.Status.Ready, job.Status.Terminating = ptr.To[int32](0), ptr.To[int32](0)
	if err := c.Status().Update(context.Background(), job); err != nil {
		t.Fatal(err)
	}
}

// A child write the API server turns down shows in the DatasetMount's status, naming the write and giving the
// API server's answer, and is made once the obstacle is gone. Here a ResourceQuota allows the namespace no
// claim, so the dataset's claim is refused.
func TestRefusedChildShowsInTheStatus(t *testing.T) {
	ctx := context.Background()
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-claims"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePersistentVolumeClaims: resource.MustParse("0")}},
	}
	if err := c.Create(ctx, quota); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, quota) })
	// The quota counts once its status says what is used, as the resource quota controller (not running in
	// envtest) would write it.
	quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{corev1.ResourcePersistentVolumeClaims: resource.MustParse("0")}}
	if err := c.Status().Update(ctx, quota); err != nil {
		t.Fatal(err)
	}
	d := builders.DatasetMount(ns, "no-room", "/medai/no-room").Obj()
	create(t, d)
	framework.Eventually(t, func(g gomega.Gomega) {
		st := dsm(g, d.Name).Status
		ready := condition(st.Conditions, aifv1.ConditionReady)
		g.Expect(ready.Status).To(gomega.Equal(metav1.ConditionFalse))
		g.Expect(ready.Reason).To(gomega.Equal(aifv1.ReasonWriteFailed))
		g.Expect(ready.Message).To(gomega.HavePrefix("create PersistentVolumeClaim " + ns + "/" + datasetmount.ClaimName(d) + ": "))
		g.Expect(ready.Message).To(gomega.ContainSubstring("quota"))
		g.Expect(condition(st.Conditions, aifv1.ConditionStalled).Status).To(gomega.Equal(metav1.ConditionTrue))
	})

	if err := c.Delete(ctx, quota); err != nil {
		t.Fatal(err)
	}
	bind(t, d)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(condition(dsm(g, d.Name).Status.Conditions, aifv1.ConditionReady).Status).To(gomega.Equal(metav1.ConditionTrue))
	})
}
