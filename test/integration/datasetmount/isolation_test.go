package datasetmount

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// fsFolder is where the operator sees a path of one of the filesystems.
func fsFolder(fs, path string) string {
	return filepath.Join(filesystems, fs, path)
}

func mkdir(t *testing.T, fs, path string) {
	t.Helper()
	if err := os.MkdirAll(fsFolder(fs, path), 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, fs, path string) {
	t.Helper()
	if err := os.Symlink(target, fsFolder(fs, path)); err != nil {
		t.Fatal(err)
	}
}

// A tenant that links a folder of its own root to another tenant's data, to the host's root or through a link
// in the middle of the path gets no DatasetMount, whether or not it asks for verification; the refusal names
// the component. Paths on CSI filesystems are resolved the same way, on the operator's mount.
func TestSymbolicLinksAreRefusedAtAdmission(t *testing.T) {
	ctx := context.Background()
	for _, fs := range []string{fsScratch, fsDatasets} {
		mkdir(t, fs, "/gridlab/secret/scans")
		mkdir(t, fs, "/medai/links")
		symlink(t, "../../gridlab/secret", fs, "/medai/links/stolen")
		symlink(t, "/", fs, "/medai/links/host")
		symlink(t, "/etc", fs, "/medai/links/etc")
		symlink(t, "../../gridlab", fs, "/medai/links/middle")
		if err := os.WriteFile(fsFolder(fs, "/medai/links/file"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, fs, path, component string
		mode                      aifv1.VerificationMode
	}{
		{"another tenant's folder", fsScratch, "/medai/links/stolen", "/medai/links/stolen", aifv1.VerificationNone},
		{"the host's root", fsScratch, "/medai/links/host", "/medai/links/host", aifv1.VerificationNone},
		{"the host's /etc, verified", fsScratch, "/medai/links/etc", "/medai/links/etc", aifv1.VerificationContent},
		{"a link in the middle", fsScratch, "/medai/links/middle/secret/scans", "/medai/links/middle", aifv1.VerificationNone},
		{"a file for a folder", fsScratch, "/medai/links/file", "/medai/links/file", aifv1.VerificationNone},
		{"CSI filesystem, another tenant's folder", fsDatasets, "/medai/links/stolen", "/medai/links/stolen", aifv1.VerificationNone},
		{"CSI filesystem, a link in the middle", fsDatasets, "/medai/links/middle/secret", "/medai/links/middle", aifv1.VerificationMetadata},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := builders.DatasetMount(ns, fmt.Sprintf("link-%d", i), tc.path).Filesystem(tc.fs).Verification(tc.mode).Obj()
			err := c.Create(ctx, d)
			if err == nil {
				_ = c.Delete(ctx, d)
				t.Fatal("admitted a dataset path through a symbolic link")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.path") || !strings.Contains(err.Error(), tc.component+" is ") {
				t.Fatalf("want Invalid naming spec.path and component %s, got: %v", tc.component, err)
			}
		})
	}
}

// A folder swapped for a link after admission is caught before the volume is made, and a dataset whose folder
// is swapped later loses its volume. A path that does not exist yet is admitted with a warning and becomes
// Ready once the folder exists.
func TestPathsAreResolvedAgainBeforeTheVolume(t *testing.T) {
	ctx := context.Background()
	mkdir(t, fsScratch, "/gridlab/private")
	mkdir(t, fsScratch, "/medai")

	d := builders.DatasetMount(ns, "later", "/medai/later").Filesystem(fsScratch).Obj()
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(c.Create(ctx, d)).To(gomega.Succeed()) })
	framework.Eventually(t, func(g gomega.Gomega) {
		ready := condition(dsm(g, d.Name).Status.Conditions, aifv1.ConditionReady)
		g.Expect(ready.Reason).To(gomega.Equal(aifv1.ReasonPathUnavailable))
		g.Expect(ready.Message).To(gomega.ContainSubstring("/medai/later does not exist"))
	})
	if err := c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, &corev1.PersistentVolume{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a volume was made for a path that does not exist: %v", err)
	}
	// The tenant makes the path a link to another tenant's folder instead of a folder.
	symlink(t, "../gridlab/private", fsScratch, "/medai/later")
	touch(t, d)
	stalled(t, d, aifv1.ReasonPathUnsafe, "/medai/later is a symbolic link")
	if err := c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, &corev1.PersistentVolume{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a volume was made through a symbolic link: %v", err)
	}
	// Made a real folder, the dataset gets its volume.
	if err := os.Remove(fsFolder(fsScratch, "/medai/later")); err != nil {
		t.Fatal(err)
	}
	mkdir(t, fsScratch, "/medai/later")
	touch(t, d)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, &corev1.PersistentVolume{})).To(gomega.Succeed())
	})
	// Swapped for a link once bound, the dataset is revoked: its claim and volume go.
	if err := os.Rename(fsFolder(fsScratch, "/medai/later"), fsFolder(fsScratch, "/medai/later-moved")); err != nil {
		t.Fatal(err)
	}
	symlink(t, "/", fsScratch, "/medai/later")
	touch(t, d)
	pv, pvc := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: datasetmount.VolumeName(d)}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: datasetmount.ClaimName(d)}}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(condition(dsm(g, d.Name).Status.Conditions, aifv1.ConditionReady).Reason).To(gomega.Equal(aifv1.ReasonPathUnsafe))
	})
	framework.Gone(t, c, pvc, pv)
}

// touch changes an annotation, so that the operator looks at the DatasetMount again now rather than at its next
// periodic look.
func touch(t *testing.T, d *aifv1.DatasetMount) {
	t.Helper()
	framework.Eventually(t, func(g gomega.Gomega) {
		got := dsm(g, d.Name)
		if got.Annotations == nil {
			got.Annotations = map[string]string{}
		}
		got.Annotations["test.aifactory.eu/touched"] = time.Now().Format(time.RFC3339Nano)
		g.Expect(c.Update(context.Background(), got)).To(gomega.Succeed())
	})
}

// Platform-set classification floors: under a root marked health, nothing can be declared less; nested roots
// take the highest floor.
func TestClassificationFloorsOfStorageRoots(t *testing.T) {
	ctx := context.Background()
	const floorNS = "floors"
	if err := env.CreateNamespaces(ctx, floorNS); err != nil {
		t.Fatal(err)
	}
	tq := builders.TenantQuota(floorNS).Namespaces(floorNS).Storage(fsScratch, "/hospital", aifv1.ReadOnly).Storage(fsScratch, "/hospital/patients", aifv1.ReadOnly).
		Classifications(aifv1.ClassificationPublic, aifv1.ClassificationInternal, aifv1.ClassificationHealth).Obj()
	tq.Spec.Storage[0].Classification = aifv1.ClassificationInternal
	tq.Spec.Storage[1].Classification = aifv1.ClassificationHealth
	if err := c.Create(ctx, tq); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path  string
		class aifv1.DataClassification
		want  string
	}{
		{"/hospital/patients/ct", aifv1.ClassificationInternal, "data under /hospital/patients is at least health"},
		{"/hospital/patients/ct", aifv1.ClassificationPublic, "data under /hospital/patients is at least health"},
		{"/hospital/patients/ct", aifv1.ClassificationHealth, ""},
		{"/hospital/statistics", aifv1.ClassificationPublic, "data under /hospital is at least internal"},
		{"/hospital/statistics", aifv1.ClassificationInternal, ""},
		{"/hospital", aifv1.ClassificationInternal, "data under /hospital/patients is at least health"},
	}
	for i, tc := range cases {
		d := builders.DatasetMount(floorNS, fmt.Sprintf("floor-%d", i), tc.path).Filesystem(fsScratch).Classification(tc.class).Obj()
		var err error
		framework.Eventually(t, func(g gomega.Gomega) {
			err = c.Create(ctx, d)
			g.Expect(err == nil || !strings.Contains(err.Error(), "belongs to no TenantQuota")).To(gomega.BeTrue())
		})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s declared %s: refused: %v", tc.path, tc.class, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "spec.classification") || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s declared %s: want a refusal of spec.classification with %q, got %v", tc.path, tc.class, tc.want, err)
		}
	}
}

// A path whose characters would change the meaning of a CSI handle is refused, naming the character; the same
// path is fine on a hostPath filesystem.
func TestPathCharactersThatBreakHandles(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ fs, path, char string }{
		{fsGPFS, "/medai/a;0;other", `';'`},
		{fsDatasets, "/medai/a,b", `','`},
		{fsBeeGFS, "/medai/x#y", `'#'`},
		{fsBeeGFS, "/medai/x?y", `'?'`},
		{fsDatasets, "/medai/with space", `' '`},
	} {
		d := builders.DatasetMount(ns, "chars", tc.path).Filesystem(tc.fs).Obj()
		err := c.Create(ctx, d)
		if err == nil {
			_ = c.Delete(ctx, d)
		}
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.path") || !strings.Contains(err.Error(), "character "+tc.char) {
			t.Errorf("%s on %s: want Invalid naming spec.path and the character %s, got %v", tc.path, tc.fs, tc.char, err)
		}
	}
	ok := builders.DatasetMount(ns, "chars-hostpath", "/medai/a;0;other").Filesystem(fsScratch).Obj()
	create(t, ok)
}

// Every pod in a tenant namespace, whoever makes it, mounts a dataset claim only as its DatasetMount grants:
// read-only for ReadOnly data, with exactly the dataset's subPath on a filesystem mounted whole, and only
// claims of DatasetMounts that exist.
func TestPodsMountDatasetClaimsOnlyAsGranted(t *testing.T) {
	ctx := context.Background()
	ro := builders.DatasetMount(ns, "pods-ro", "/medai/pods-ro").Obj()
	whole := builders.DatasetMount(ns, "pods-whole", "/medai/pods-whole").Filesystem(fsWhole).Obj()
	rw := builders.DatasetMount(ns, "pods-rw", "/medai/pods-rw").Filesystem(fsScratch).Access(aifv1.ReadWrite).Obj()
	for _, d := range []*aifv1.DatasetMount{ro, whole, rw} {
		create(t, d)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(dsm(g, whole.Name).Status.SubPath).To(gomega.Equal("medai/pods-whole"))
		g.Expect(dsm(g, ro.Name).Status.ClaimName).NotTo(gomega.BeEmpty())
	})
	claim := func(d *aifv1.DatasetMount) string { return datasetmount.ClaimName(d) }
	cases := []struct {
		name  string
		pod   *corev1.Pod
		field string
	}{
		{"ReadOnly claim mounted writable", podWith(claim(ro), false, corev1.VolumeMount{Name: "d", MountPath: "/d"}), "spec.containers[0].volumeMounts[0].readOnly"},
		{"ReadOnly claim mounted twice, once writable", podWith(claim(ro), false,
			corev1.VolumeMount{Name: "d", MountPath: "/d", ReadOnly: true}, corev1.VolumeMount{Name: "d", MountPath: "/w"}), "spec.containers[0].volumeMounts[1].readOnly"},
		{"ReadOnly claim writable in an init container", initPodWith(claim(ro)), "spec.initContainers[0].volumeMounts[0].readOnly"},
		{"whole filesystem without subPath", podWith(claim(whole), true, corev1.VolumeMount{Name: "d", MountPath: "/d", ReadOnly: true}), "spec.containers[0].volumeMounts[0].subPath"},
		{"whole filesystem, another subPath", podWith(claim(whole), true, corev1.VolumeMount{Name: "d", MountPath: "/d", ReadOnly: true, SubPath: "gridlab"}), "spec.containers[0].volumeMounts[0].subPath"},
		{"whole filesystem, a folder below the dataset", podWith(claim(whole), true,
			corev1.VolumeMount{Name: "d", MountPath: "/d", ReadOnly: true, SubPath: "medai/pods-whole/link"}), "spec.containers[0].volumeMounts[0].subPath"},
		{"whole filesystem, subPathExpr", podWith(claim(whole), true,
			corev1.VolumeMount{Name: "d", MountPath: "/d", ReadOnly: true, SubPathExpr: "medai/$(NS)"}), "spec.containers[0].volumeMounts[0].subPath"},
		{"claim of no DatasetMount", podWith("dataset-made-up", true, corev1.VolumeMount{Name: "d", MountPath: "/d", ReadOnly: true}), "spec.volumes[0].persistentVolumeClaim.claimName"},
		{"an ephemeral volume whose claim takes a dataset's name", ephemeralPod("dataset", "pods-ro"), "spec.volumes[0].name"},
		{"fsGroup on a whole-filesystem claim", withFSGroup(podWith(claim(whole), true,
			corev1.VolumeMount{Name: "d", MountPath: "/d", ReadOnly: true, SubPath: "medai/pods-whole"})), "spec.securityContext.fsGroup"},
		{"ReadOnly claim, read-only mount", podWith(claim(ro), false, corev1.VolumeMount{Name: "d", MountPath: "/d", ReadOnly: true}), ""},
		{"ReadOnly claim, read-only volume", podWith(claim(ro), true, corev1.VolumeMount{Name: "d", MountPath: "/d"}), ""},
		{"whole filesystem with the dataset's subPath", podWith(claim(whole), true,
			corev1.VolumeMount{Name: "d", MountPath: "/d", ReadOnly: true, SubPath: "medai/pods-whole"}), ""},
		{"ReadWrite claim, writable", podWith(claim(rw), false, corev1.VolumeMount{Name: "d", MountPath: "/d"}), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Create(ctx, tc.pod, client.DryRunAll)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("a pod that mounts as granted was refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("want a refusal naming %s, got %v", tc.field, err)
			}
			t.Log(err)
		})
	}

	// A run whose template sets fsGroup cannot mount a whole filesystem either.
	fsg := builders.TrainingJob(ns, "fsgroup").Dataset(whole.Name, "/data").Obj()
	fsg.Spec.Template.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](4000)}
	if err := c.Create(ctx, fsg, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "spec.template.spec.securityContext.fsGroup") {
		t.Errorf("a run with fsGroup on a whole-filesystem dataset: want a refusal naming fsGroup, got %v", err)
	}

	// A folder swapped for a link after the DatasetMount became Ready: the next pod is refused at once, before the
	// controller's next look.
	swapped := builders.DatasetMount(ns, "pods-swapped", "/medai/pods-swapped").Filesystem(fsScratch).Obj()
	create(t, swapped)
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(dsm(g, swapped.Name).Status.ClaimName).NotTo(gomega.BeEmpty()) })
	mkdir(t, fsScratch, "/gridlab/pods-secret")
	if err := os.Remove(fsFolder(fsScratch, "/medai/pods-swapped")); err != nil {
		t.Fatal(err)
	}
	symlink(t, "../gridlab/pods-secret", fsScratch, "/medai/pods-swapped")
	err := c.Create(ctx, podWith(claim(swapped), true, corev1.VolumeMount{Name: "d", MountPath: "/d"}), client.DryRunAll)
	if err == nil || !strings.Contains(err.Error(), "/medai/pods-swapped is a symbolic link") {
		t.Errorf("a pod mounting a dataset whose folder became a link: want a refusal, got %v", err)
	}

	// An ephemeral container cannot add the writable mount that the pod's containers lack.
	p := podWith(claim(ro), false, corev1.VolumeMount{Name: "d", MountPath: "/d", ReadOnly: true})
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debug", Image: "registry.example.eu/debug:1", VolumeMounts: []corev1.VolumeMount{{Name: "d", MountPath: "/w"}},
		SecurityContext: restrictedContainer(),
	}}}
	err = c.SubResource("ephemeralcontainers").Update(ctx, p)
	if err == nil || !strings.Contains(err.Error(), "spec.ephemeralContainers[0].volumeMounts[0].readOnly") {
		t.Fatalf("an ephemeral container with a writable mount of a ReadOnly claim: want a refusal, got %v", err)
	}
}

func restrictedContainer() *corev1.SecurityContext {
	return &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), RunAsNonRoot: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
}

// podWith is a pod of the tenant namespace that passes Pod Security restricted and mounts the claim.
func podWith(claimName string, readOnlyVolume bool, mounts ...corev1.VolumeMount) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "reader-"},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "main", Image: "registry.example.eu/reader:1", VolumeMounts: mounts,
				Env: []corev1.EnvVar{{Name: "NS", Value: "medai"}}, SecurityContext: restrictedContainer()}},
			Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName, ReadOnly: readOnlyVolume}}}},
		},
	}
}

// ephemeralPod is a pod named name with a generic ephemeral volume named volume, whose claim is name-volume.
func ephemeralPod(name, volume string) *corev1.Pod {
	p := podWith("unused", true)
	p.GenerateName, p.Name = "", name
	p.Spec.Volumes = []corev1.Volume{{Name: volume, VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
		VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany}, StorageClassName: ptr.To(""),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
		}}}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: volume, MountPath: "/d"}}
	return p
}

func withFSGroup(p *corev1.Pod) *corev1.Pod {
	p.Spec.SecurityContext.FSGroup = ptr.To[int64](4000)
	return p
}

func initPodWith(claimName string) *corev1.Pod {
	p := podWith(claimName, false, corev1.VolumeMount{Name: "d", MountPath: "/d", ReadOnly: true})
	p.Spec.InitContainers = []corev1.Container{{Name: "stage", Image: "registry.example.eu/reader:1",
		VolumeMounts: []corev1.VolumeMount{{Name: "d", MountPath: "/d"}}, SecurityContext: restrictedContainer()}}
	return p
}

// A tenant pod that claims to be the verification cannot write the dataset's manifest: only pods controlled by
// the verification Job and running exactly the operator's verifier count. The forged pods here carry the
// Job's labels and a made-up digest; with nothing else, the verification ends without a manifest.
func TestForgedVerificationPodsAreIgnored(t *testing.T) {
	ctx := context.Background()
	d := builders.DatasetMount(ns, "forged", "/medai/forged").Verification(aifv1.VerificationMetadata).Obj()
	job := verificationJob(t, d)
	forged := `{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","files":1,"bytes":1,"mode":"Metadata","verifiedAt":"2026-01-01T00:00:00Z"}`
	own := job.Spec.Template.Spec

	// 1. The Job's labels, no owner reference, the verifier's own spec.
	labelled := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: job.Name + "-forged-a", Labels: map[string]string{
		batchv1.JobNameLabel: job.Name, aifv1.ManagedByLabel: aifv1.ManagedByValue}}, Spec: *own.DeepCopy()}
	if err := c.Create(ctx, labelled); err != nil {
		t.Fatal(err)
	}
	finishPod(t, labelled, 0, forged)
	// 2. An owner reference to the Job (anyone who creates pods can write one) and a container of its own.
	other := own.DeepCopy()
	other.Containers[0].Image = "registry.example.eu/tenant/fake-verifier:1"
	jobPod(t, job, "forged-b", *other, 0, forged)
	// 3. The verifier's spec and owner reference, but other arguments (a walk of another folder).
	args := own.DeepCopy()
	args.Containers[0].Args = []string{"verify-dataset", "--root=/", "--mode=Metadata"}
	jobPod(t, job, "forged-c", *args, 0, forged)
	// 4. An extra container that could write the verify container's termination log.
	extra := own.DeepCopy()
	extra.Containers = append(extra.Containers, corev1.Container{Name: "helper", Image: "registry.example.eu/tenant/helper:1", SecurityContext: restrictedContainer()})
	jobPod(t, job, "forged-d", *extra, 0, forged)

	completeVerification(t, job)
	framework.Eventually(t, func(g gomega.Gomega) {
		st := dsm(g, d.Name).Status
		v := condition(st.Conditions, aifv1.ConditionVerified)
		g.Expect(v.Reason).To(gomega.Equal(aifv1.ReasonVerificationFailed))
		g.Expect(v.Message).To(gomega.ContainSubstring("reported no manifest"))
		g.Expect(st.Manifest).To(gomega.BeNil())
	})
}

// Verification pods go where the filesystems are mounted (the GPU classes' nodes, tolerating their taint), run
// as the configured identity and have a deadline; one that cannot run by then leaves the DatasetMount Stalled
// with the reason, and its Job is deleted.
func TestVerificationPlacementAndDeadline(t *testing.T) {
	ctx := context.Background()
	d := builders.DatasetMount(ns, "placed", "/medai/placed").Verification(aifv1.VerificationContent).Obj()
	job := verificationJob(t, d)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(condition(dsm(g, d.Name).Status.Conditions, aifv1.ConditionVerified).Reason).To(gomega.Equal(aifv1.ReasonVerificationRunning))
	})
	spec := job.Spec.Template.Spec
	terms := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || terms[0].MatchExpressions[0].Key != "nvidia.com/gpu.product" || terms[0].MatchExpressions[0].Values[0] != "NVIDIA-H100-80GB-HBM3" {
		t.Errorf("verification pods are not placed on the GPU class's nodes: %+v", terms)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Key != "nvidia.com/gpu" {
		t.Errorf("verification pods do not tolerate the GPU nodes' taint: %+v", spec.Tolerations)
	}
	if *spec.SecurityContext.RunAsUser != 65532 || *spec.SecurityContext.RunAsGroup != 65532 {
		t.Errorf("verification pods run as %d:%d, want the configured 65532:65532", *spec.SecurityContext.RunAsUser, *spec.SecurityContext.RunAsGroup)
	}
	if job.Spec.ActiveDeadlineSeconds == nil || *job.Spec.ActiveDeadlineSeconds != 21600 {
		t.Errorf("verification Job deadline = %v, want 21600 s", job.Spec.ActiveDeadlineSeconds)
	}
	// The pod waits for a node that never comes, as the scheduler reports it.
	p := podOf(job, "w", spec)
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodPending
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector.", LastTransitionTime: metav1.Now()}}
	if err := c.Status().Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		v := condition(dsm(g, d.Name).Status.Conditions, aifv1.ConditionVerified)
		g.Expect(v.Message).To(gomega.ContainSubstring("didn't match Pod's node affinity"))
	})
	clk.Step(7 * time.Hour)
	// Deadlines are measured from the objects' real creation times: the clock goes back for the tests after.
	t.Cleanup(func() { clk.Step(-7 * time.Hour) })
	touch(t, d)
	framework.Eventually(t, func(g gomega.Gomega) {
		got := dsm(g, d.Name)
		v := condition(got.Status.Conditions, aifv1.ConditionVerified)
		g.Expect(v.Reason).To(gomega.Equal(aifv1.ReasonVerificationFailed))
		g.Expect(v.Message).To(gomega.ContainSubstring("did not finish within 6h0m0s"))
		g.Expect(v.Message).To(gomega.ContainSubstring("didn't match Pod's node affinity"))
		g.Expect(condition(got.Status.Conditions, aifv1.ConditionStalled).Status).To(gomega.Equal(metav1.ConditionTrue))
		err := c.Get(ctx, client.ObjectKeyFromObject(job), &batchv1.Job{})
		g.Expect(apierrors.IsNotFound(err) || err == nil && jobDeleting(g, job)).To(gomega.BeTrue())
	})
}

func jobDeleting(g gomega.Gomega, job *batchv1.Job) bool {
	got := &batchv1.Job{}
	g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(job), got)).To(gomega.Succeed())
	return got.DeletionTimestamp != nil
}

// A namespace that moves to another TenantQuota loses what the first one granted, even where the second has
// the same root: the DatasetMount reports TenantChanged and its volume goes.
func TestNamespaceMovedToAnotherTenantLosesItsDatasets(t *testing.T) {
	ctx := context.Background()
	const moverNS = "mover"
	if err := env.CreateNamespaces(ctx, moverNS); err != nil {
		t.Fatal(err)
	}
	a := builders.TenantQuota("mover-a").Namespaces(moverNS).Storage(fsScratch, "/shared", aifv1.ReadOnly).Obj()
	if err := c.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	d := builders.DatasetMount(moverNS, "moved", "/shared/moved").Filesystem(fsScratch).Obj()
	create(t, d)
	framework.Eventually(t, func(g gomega.Gomega) {
		got := &aifv1.DatasetMount{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(d), got)).To(gomega.Succeed())
		g.Expect(got.Status.Tenant).To(gomega.Equal("mover-a"))
		g.Expect(c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, &corev1.PersistentVolume{})).To(gomega.Succeed())
	})
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := &aifv1.TenantQuota{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: "mover-a"}, tq)).To(gomega.Succeed())
		tq.Spec.Namespaces = []string{"mover-a-elsewhere"}
		g.Expect(c.Update(ctx, tq)).To(gomega.Succeed())
	})
	b := builders.TenantQuota("mover-b").Namespaces(moverNS).Storage(fsScratch, "/shared", aifv1.ReadOnly).Obj()
	if err := c.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		got := &aifv1.DatasetMount{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(d), got)).To(gomega.Succeed())
		ready := condition(got.Status.Conditions, aifv1.ConditionReady)
		g.Expect(ready.Reason).To(gomega.Equal(aifv1.ReasonTenantChanged))
		g.Expect(ready.Message).To(gomega.ContainSubstring("moved from TenantQuota mover-a to mover-b"))
	})
	pv, pvc := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: datasetmount.VolumeName(d)}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: moverNS, Name: datasetmount.ClaimName(d)}}
	framework.Gone(t, c, pvc, pv)
}

// A claim of a dataset's name that the tenant made before the DatasetMount (its own storage, or filled with
// other data) never gets the dataset's volume: the DatasetMount reports ClaimConflict and no volume is made. A
// plain claim is outside the operator's cache (it holds only claims with its label); a forged one carries the
// label.
func TestForeignClaimOfADatasetsNameGetsNoVolume(t *testing.T) {
	for name, labels := range map[string]map[string]string{
		"squatted-plain":  nil,
		"squatted-forged": {aifv1.ManagedByLabel: aifv1.ManagedByValue},
	} {
		t.Run(name, func(t *testing.T) { foreignClaim(t, name, labels) })
	}
}

func foreignClaim(t *testing.T, name string, labels map[string]string) {
	ctx := context.Background()
	d := builders.DatasetMount(ns, name, "/medai/squatted").Obj()
	squat := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: datasetmount.ClaimName(d), Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany}, StorageClassName: ptr.To(""),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}}},
	}
	if err := c.Create(ctx, squat); err != nil {
		t.Fatal(err)
	}
	create(t, d)
	stalled(t, d, aifv1.ReasonClaimConflict, "is not this DatasetMount's")
	if err := c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, &corev1.PersistentVolume{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a volume was made while a foreign claim holds the dataset's claim name: %v", err)
	}
	// Once the tenant's claim is gone, the operator's claim and the volume, pre-bound to that claim's UID.
	if err := c.Delete(ctx, squat); err != nil {
		t.Fatal(err)
	}
	unprotect(t, squat)
	touch(t, d)
	framework.Eventually(t, func(g gomega.Gomega) {
		claim, pv := &corev1.PersistentVolumeClaim{}, &corev1.PersistentVolume{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: datasetmount.ClaimName(d)}, claim)).To(gomega.Succeed())
		g.Expect(c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, pv)).To(gomega.Succeed())
		g.Expect(pv.Spec.ClaimRef.UID).To(gomega.Equal(claim.UID))
	})
}

// A ReadWrite dataset on a filesystem mounted whole would be held in by a subPath alone: refused.
func TestReadWriteOnAWholeFilesystemIsRefused(t *testing.T) {
	tq := builders.TenantQuota("whole-rw").Namespaces("whole-rw").Storage(fsWhole, "/whole-rw", aifv1.ReadWrite).Obj()
	if err := env.CreateNamespaces(context.Background(), "whole-rw"); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(context.Background(), tq); err != nil {
		t.Fatal(err)
	}
	d := builders.DatasetMount("whole-rw", "ckpt", "/whole-rw/ckpt").Filesystem(fsWhole).Access(aifv1.ReadWrite).Obj()
	var err error
	framework.Eventually(t, func(g gomega.Gomega) {
		err = c.Create(context.Background(), d)
		g.Expect(err).To(gomega.HaveOccurred())
		g.Expect(err.Error()).NotTo(gomega.ContainSubstring("belongs to no TenantQuota"))
	})
	if !strings.Contains(err.Error(), "spec.access") || !strings.Contains(err.Error(), "mounted whole") {
		t.Fatalf("want a refusal of spec.access, got %v", err)
	}
}

// A Job of the verification's name that the operator did not make (or that an earlier version made with
// another image) is replaced by the operator's own before anything is read from it, whether or not it carries
// the operator's label (without it, it is outside the operator's cache).
func TestForeignVerificationJobIsReplaced(t *testing.T) {
	for name, labels := range map[string]map[string]string{
		"prejob-plain":  nil,
		"prejob-forged": {aifv1.ManagedByLabel: aifv1.ManagedByValue},
	} {
		t.Run(name, func(t *testing.T) { foreignVerificationJob(t, name, labels) })
	}
}

func foreignVerificationJob(t *testing.T, dataset string, labels map[string]string) {
	ctx := context.Background()
	d := builders.DatasetMount(ns, dataset, "/medai/prejob").Verification(aifv1.VerificationMetadata).Obj()
	create(t, d)
	name := ""
	framework.Eventually(t, func(g gomega.Gomega) {
		got := dsm(g, d.Name)
		g.Expect(got.Generation).NotTo(gomega.BeZero())
		name = datasetmount.VerificationJobName(got)
	})
	foreign := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers:      []corev1.Container{{Name: "verify", Image: "registry.example.eu/tenant/fake-verifier:1", SecurityContext: restrictedContainer()}}}}},
	}
	if err := c.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	bind(t, d)
	framework.Eventually(t, func(g gomega.Gomega) {
		job := &batchv1.Job{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, job)).To(gomega.Succeed())
		g.Expect(job.UID).NotTo(gomega.Equal(foreign.UID), "the foreign Job is deleted and the operator's made")
		g.Expect(job.Spec.Template.Spec.Containers[0].Image).To(gomega.Equal(image))
	})
}

// A dataset claim that the tenant deletes is made again, and the volume, which Kubernetes keeps reserved for
// the deleted claim (Released), is replaced by one pre-bound to the new claim.
func TestDeletedClaimIsMadeAgain(t *testing.T) {
	ctx := context.Background()
	d := builders.DatasetMount(ns, "reclaimed", "/medai/reclaimed").Obj()
	create(t, d)
	bind(t, d)
	old := &corev1.PersistentVolumeClaim{}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: datasetmount.ClaimName(d)}, old)).To(gomega.Succeed())
	})
	if err := c.Delete(ctx, old); err != nil {
		t.Fatal(err)
	}
	unprotect(t, old)
	// What the PersistentVolume controller (not running in envtest) does with a volume whose claim is gone.
	framework.Eventually(t, func(g gomega.Gomega) {
		pv := &corev1.PersistentVolume{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, pv)).To(gomega.Succeed())
		pv.Status.Phase = corev1.VolumeReleased
		g.Expect(c.Status().Update(ctx, pv)).To(gomega.Succeed())
	})
	framework.Eventually(t, func(g gomega.Gomega) {
		pv := &corev1.PersistentVolume{}
		err := c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, pv)
		if err == nil && pv.DeletionTimestamp != nil {
			unprotect(t, pv)
		}
		claim := &corev1.PersistentVolumeClaim{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: datasetmount.ClaimName(d)}, claim)).To(gomega.Succeed())
		g.Expect(claim.UID).NotTo(gomega.Equal(old.UID))
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(pv.DeletionTimestamp).To(gomega.BeNil())
		g.Expect(pv.Spec.ClaimRef.UID).To(gomega.Equal(claim.UID), "the new volume is reserved for the new claim")
	})
}

// stalled waits until the DatasetMount is Ready=False with the reason and a message containing msg, and Stalled.
func stalled(t *testing.T, d *aifv1.DatasetMount, reason, msg string) {
	t.Helper()
	framework.Eventually(t, func(g gomega.Gomega) {
		got := dsm(g, d.Name)
		ready := condition(got.Status.Conditions, aifv1.ConditionReady)
		g.Expect(ready.Reason).To(gomega.Equal(reason))
		g.Expect(ready.Message).To(gomega.ContainSubstring(msg))
		g.Expect(condition(got.Status.Conditions, aifv1.ConditionStalled).Status).To(gomega.Equal(metav1.ConditionTrue))
	})
}
