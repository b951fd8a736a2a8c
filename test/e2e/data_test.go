package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount/manifest"
	"github.com/aifactory-eu/aifactory-operator/internal/factory"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// datasetsDir is a folder of the factory's simulated Lustre filesystem, on this machine.
func datasetsDir(parts ...string) string {
	return filepath.Join(append([]string{f.Dir, "data", factory.FilesystemDatasets}, parts...)...)
}

func writeFiles(t *testing.T, folder string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(folder, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil { //nolint:gosec // test data
			t.Fatal(err)
		}
	}
}

func datasetYAML(ns, name, path, verification string) string {
	return `apiVersion: aifactory.eu/v1alpha1
kind: DatasetMount
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec: {filesystem: lustre-datasets, path: "` + path + `", access: ReadOnly, classification: internal, verification: ` + verification + `}
`
}

// The data a tenant reaches on the factory, tried through kubectl and the API as a tenant engineer would, with
// real folders and real symbolic links on the filesystem folder: links out of the tenant's root are refused
// naming the component; a run template and a plain Pod cannot mount a dataset claim writable; a revoked root
// leaves the running run its data and then takes the claim and the volume away.
func TestDataIsolation(t *testing.T) {
	const ns, other = "e2e-data", "e2e-data-other"
	ctx := context.Background()
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassH100, 8).Storage(factory.FilesystemDatasets, "/"+ns, aifv1.ReadOnly))
	writeFiles(t, datasetsDir(other, "secret"), map[string]string{"patients.csv": "id,diagnosis\n"})
	writeFiles(t, datasetsDir(ns, "scans"), map[string]string{"a.dcm": "scan a", "b/c.dcm": "scan c"})
	for link, target := range map[string]string{"stolen": "../" + other + "/secret", "root": "/", "middle": "../" + other} {
		if err := os.Symlink(target, datasetsDir(ns, link)); err != nil {
			t.Fatal(err)
		}
	}

	// Symbolic links to another tenant's folder, to / and in a middle component, with verification None.
	for path, component := range map[string]string{
		"/" + ns + "/stolen":        "/" + ns + "/stolen is a symbolic link",
		"/" + ns + "/root":          "/" + ns + "/root is a symbolic link",
		"/" + ns + "/middle/secret": "component /" + ns + "/middle is a symbolic link",
	} {
		framework.Eventually(t, func(g gomega.Gomega) {
			out, err := kubectlApply(datasetYAML(ns, "linked", path, "None"))
			g.Expect(err).To(gomega.HaveOccurred(), "%s must be refused: %s", path, out)
			g.Expect(out).To(gomega.ContainSubstring("spec.path"))
			g.Expect(out).To(gomega.ContainSubstring(component))
		})
	}
	if err := f.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "linked"}, &aifv1.DatasetMount{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a DatasetMount through a link must not exist: %v", err)
	}

	// A real dataset, bound by the real PersistentVolume controller.
	if out, err := kubectlApply(datasetYAML(ns, "scans", "/"+ns+"/scans", "None")); err != nil {
		t.Fatalf("kubectl apply: %v: %s", err, out)
	}
	d := &aifv1.DatasetMount{}
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "scans"}, d)).To(gomega.Succeed())
		g.Expect(apimeta.IsStatusConditionTrue(d.Status.Conditions, aifv1.ConditionReady)).To(gomega.BeTrue(), "%v", d.Status.Conditions)
	})
	claim := datasetmount.ClaimName(d)

	// The claim mounted a second time in a run's template, writable and without subPath.
	tjYAML := `apiVersion: aifactory.eu/v1alpha1
kind: TrainingJob
metadata: {name: second-mount, namespace: ` + ns + `}
spec:
  nodes: 1
  gpusPerNode: 8
  datasets: [{name: scans, mountPath: /data}]
  template:
    spec:
      volumes: [{name: again, persistentVolumeClaim: {claimName: ` + claim + `}}]
      containers:
      - {name: trainer, image: registry.example.eu/t:1, volumeMounts: [{name: again, mountPath: /rw}]}
`
	out, err := kubectlApply(tjYAML)
	if err == nil || !strings.Contains(out, "spec.template.spec.volumes[0].persistentVolumeClaim") {
		t.Errorf("a second, writable mount of the dataset claim in a run template must be refused: %v: %s", err, out)
	}

	// A plain Pod that mounts the ReadOnly claim writable.
	writer := restrictedPod(ns, "writer", 0)
	writer.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
	writer.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}
	writer.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "d", MountPath: "/d"}}
	err = f.Client.Create(ctx, writer)
	if err == nil || !strings.Contains(err.Error(), "spec.containers[0].volumeMounts[0].readOnly") {
		t.Errorf("a plain Pod mounting a ReadOnly dataset claim writable must be refused: %v", err)
	}

	// Revoking the root while a run reads the dataset.
	create(t, run(ns, "reader", 1, 8, 45*time.Second).Dataset("scans", "/data").Obj())
	waitPhase(t, ns, "reader", long, aifv1.PhaseRunning)
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		tq.Spec.Storage = nil
		g.Expect(f.Client.Update(ctx, tq)).To(gomega.Succeed())
	})
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "scans"}, d)).To(gomega.Succeed())
		g.Expect(apimeta.FindStatusCondition(d.Status.Conditions, aifv1.ConditionReady).Reason).To(gomega.Equal(aifv1.ReasonNotPermitted))
		g.Expect(apimeta.IsStatusConditionTrue(d.Status.Conditions, aifv1.ConditionStalled)).To(gomega.BeTrue())
	})
	// The run (45 s) still reads: its volume stays.
	if phase := get(gomega.NewWithT(t), ns, "reader").Status.Phase; phase != aifv1.PhaseRunning {
		t.Fatalf("the reader is %s, want it still Running when the revocation is seen", phase)
	}
	pv := &corev1.PersistentVolume{}
	if err := f.Client.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, pv); err != nil || pv.DeletionTimestamp != nil {
		t.Errorf("the volume went while the run still reads it: %v", err)
	}
	waitPhase(t, ns, "reader", long, aifv1.PhaseSucceeded)
	// The run ended: the operator deletes the claim and the volume. Kubernetes' own storage protection keeps
	// them (terminating, unusable by any new pod) while the run's finished pods still name the claim.
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		pvc := &corev1.PersistentVolumeClaim{}
		err := f.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: claim}, pvc)
		g.Expect(apierrors.IsNotFound(err) || err == nil && pvc.DeletionTimestamp != nil).To(gomega.BeTrue(), "claim: %v", err)
		pv := &corev1.PersistentVolume{}
		err = f.Client.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, pv)
		g.Expect(apierrors.IsNotFound(err) || err == nil && pv.DeletionTimestamp != nil).To(gomega.BeTrue(), "volume: %v", err)
	})
	// Once the finished pods are cleaned up, both are gone.
	if err := f.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.MatchingLabels{aifv1.TrainingJobLabel: "reader"}); err != nil {
		t.Fatal(err)
	}
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		g.Expect(apierrors.IsNotFound(f.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: claim}, &corev1.PersistentVolumeClaim{}))).To(gomega.BeTrue(), "claim")
		g.Expect(apierrors.IsNotFound(f.Client.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, &corev1.PersistentVolume{}))).To(gomega.BeTrue(), "volume")
	})
	if _, err := os.Stat(datasetsDir(ns, "scans", "b", "c.dcm")); err != nil {
		t.Errorf("the data must stay on the filesystem: %v", err)
	}
}

// A tenant pod that carries the verification Job's labels and a made-up manifest does not become the
// dataset's manifest: the digest is the walker's, of the real folder. The forged pod's container never runs on
// the simulated node; the test writes the status the kubelet would report after a tenant container had written
// that termination message.
func TestForgedVerificationIsIgnored(t *testing.T) {
	const ns = "e2e-forge"
	ctx := context.Background()
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassH100, 8).Storage(factory.FilesystemDatasets, "/"+ns, aifv1.ReadOnly))
	folder := datasetsDir(ns, "genomes")
	writeFiles(t, folder, map[string]string{"chr1.fa": "ACGT", "chr2.fa": "TTGA"})
	want, err := manifest.Compute(folder, manifest.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	d := builders.DatasetMount(ns, "genomes", "/"+ns+"/genomes").Filesystem(factory.FilesystemDatasets).Verification(aifv1.VerificationMetadata).Obj()
	jobName := "verify-genomes-1"
	forged := restrictedPod(ns, "aaa-"+jobName, 0)
	forged.Labels = map[string]string{batchv1.JobNameLabel: jobName, aifv1.ManagedByLabel: aifv1.ManagedByValue, aifv1.DatasetMountLabel: "genomes"}
	forged.Spec.Containers[0].Name = "verify"
	forged.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
	forged.Spec.Containers[0].Args = []string{"--write-termination-log"}
	forged.Spec.NodeSelector = map[string]string{"e2e.aifactory.eu/no-such-node": "true"} // no simulated node touches it
	create(t, forged)
	fake := `{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","files":1,"bytes":1,"mode":"Metadata","verifiedAt":"2026-01-01T00:00:00Z"}`
	framework.Eventually(t, func(g gomega.Gomega) {
		p := &corev1.Pod{}
		g.Expect(f.Client.Get(ctx, client.ObjectKeyFromObject(forged), p)).To(gomega.Succeed())
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "verify", Image: p.Spec.Containers[0].Image, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Message: fake, Reason: "Completed", StartedAt: metav1.Now(), FinishedAt: metav1.Now()}}}}
		g.Expect(f.Client.Status().Update(ctx, p)).To(gomega.Succeed())
	})
	create(t, d)
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		got := &aifv1.DatasetMount{}
		g.Expect(f.Client.Get(ctx, client.ObjectKeyFromObject(d), got)).To(gomega.Succeed())
		g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, aifv1.ConditionVerified)).To(gomega.BeTrue(), "%v", got.Status.Conditions)
		g.Expect(got.Status.Manifest.Digest).To(gomega.Equal(want.Digest), "the walker's digest, not the forged one")
	})
	job := &batchv1.Job{}
	if err := f.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: jobName}, job); err != nil {
		t.Fatal(err)
	}
	spec := job.Spec.Template.Spec
	if spec.Affinity == nil || len(spec.Tolerations) == 0 || ptr.Deref(spec.SecurityContext.RunAsUser, 0) == 0 || ptr.Deref(job.Spec.ActiveDeadlineSeconds, 0) == 0 {
		t.Errorf("the verification pod must be placed on GPU nodes, tolerate them, run as the configured user and have a deadline: %+v", spec)
	}
}
