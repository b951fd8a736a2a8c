package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount/manifest"
	"github.com/aifactory-eu/aifactory-operator/internal/factory"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// long is how long a run of a few seconds may take from creation to its end on the factory.
const long = 90 * time.Second

func tenant(t *testing.T, b *builders.TenantQuotaBuilder) {
	t.Helper()
	ctx := context.Background()
	tq := b.Obj()
	for _, ns := range tq.Spec.Namespaces {
		if err := f.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
	}
	if err := f.Client.Create(ctx, tq); err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	framework.Eventually(t, func(g gomega.Gomega) { // the tenant's webhook checks need the TenantQuota in the operator's cache
		g.Expect(f.Client.Create(context.Background(), obj)).To(gomega.Succeed())
	})
}

func get(g gomega.Gomega, ns, name string) *aifv1.TrainingJob {
	tj := &aifv1.TrainingJob{}
	g.Expect(f.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, tj)).To(gomega.Succeed())
	return tj
}

func run(ns, name string, nodes, gpus int32, runtime time.Duration) *builders.TrainingJobBuilder {
	return builders.TrainingJob(ns, name).Shape(nodes, gpus).SimulatedRuntime(runtime, false)
}

func mig(b *builders.TrainingJobBuilder) *builders.TrainingJobBuilder {
	return b.GPUClass(factory.ClassMIG).GPUResource(builders.MIGResource)
}

func waitPhase(t *testing.T, ns, name string, within time.Duration, phase aifv1.TrainingJobPhase) *aifv1.TrainingJob {
	t.Helper()
	var tj *aifv1.TrainingJob
	framework.EventuallyWithin(t, within, func(g gomega.Gomega) {
		tj = get(g, ns, name)
		g.Expect(tj.Status.Phase).To(gomega.Equal(phase), "reason %s: %s", tj.Status.Reason, tj.Status.Message)
	})
	return tj
}

// workloadSeconds is the GPU-seconds of the finished workloads of a namespace, from Kueue's own conditions.
func workloadSeconds(g gomega.Gomega, ns string, gpus int64) int64 {
	var wls kueue.WorkloadList
	g.Expect(f.Client.List(context.Background(), &wls, client.InNamespace(ns))).To(gomega.Succeed())
	var secs int64
	for _, wl := range wls.Items {
		fin := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadFinished)
		adm := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadAdmitted)
		if fin == nil || adm == nil || !strings.HasPrefix(wl.Name, "job-run-") {
			continue
		}
		past := int64(ptr.Deref(wl.Status.AccumulatedPastExecutionTimeSeconds, 0))
		secs += (past + int64(fin.LastTransitionTime.Sub(adm.LastTransitionTime.Time)/time.Second)) * gpus
	}
	return secs
}

// The whole life of a run on real controllers: the dataset is verified by the real walker on a real folder, the
// run is admitted by Kueue, scheduled by kube-scheduler onto H100 nodes, run by the Job controller, and
// `kubectl wait --for=condition=Succeeded` returns; the record and usage match what Kueue and the walker say.
func TestRunLifecycleWithRealControllers(t *testing.T) {
	const ns = "e2e-life"
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassH100, 16).
		Storage(factory.FilesystemDatasets, "/e2e-life", aifv1.ReadOnly).Budget(1000, aifv1.PeriodMonth, aifv1.ExhaustedHold))
	folder := filepath.Join(f.Dir, "data", factory.FilesystemDatasets, "e2e-life", "corpus")
	for name, content := range map[string]string{"a.txt": "alpha\n", "b/c.txt": "gamma\n", "b/d.bin": "\x00\x01\x02"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(folder, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(folder, name), []byte(content), 0o644); err != nil { //nolint:gosec // test data
			t.Fatal(err)
		}
	}
	want, err := manifest.Compute(folder, manifest.Content)
	if err != nil {
		t.Fatal(err)
	}
	create(t, builders.DatasetMount(ns, "corpus", "/e2e-life/corpus").Filesystem(factory.FilesystemDatasets).Verification(aifv1.VerificationContent).Obj())
	create(t, run(ns, "run", 2, 8, 3*time.Second).Dataset("corpus", "/data").Obj())

	out, err := exec.Command(kubectl, "--kubeconfig", f.Kubeconfig, "wait", "--for=condition=Succeeded", "trainingjob/run", "-n", ns, "--timeout=90s").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "condition met") {
		t.Fatalf("kubectl wait: %v: %s", err, out)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		tj := get(g, ns, "run")
		r := tj.Status.Record
		g.Expect(r).NotTo(gomega.BeNil())
		g.Expect(r.Result).To(gomega.Equal(aifv1.PhaseSucceeded))
		g.Expect(r.Datasets).To(gomega.HaveLen(1))
		g.Expect(r.Datasets[0].ManifestDigest).To(gomega.Equal(want.Digest), "the walker's digest of the real folder")
		g.Expect(r.Nodes).To(gomega.HaveLen(2))
		for _, n := range r.Nodes {
			g.Expect(n).To(gomega.HavePrefix("gpu-h100-"), "kube-scheduler placed the workers on H100 nodes")
		}
		used := workloadSeconds(g, ns, 16)
		g.Expect(used).To(gomega.BeNumerically(">", 0))
		g.Expect(tj.Status.Usage.GPUSeconds).To(gomega.Equal(used))
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(context.Background(), client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.Equal(used), "the tenant's ledger counts the same seconds")
	})
	var pods corev1.PodList
	if err := f.Client.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{aifv1.TrainingJobLabel: "run"}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("want 2 worker pods, got %d", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodSucceeded || p.Spec.Containers[0].Resources.Limits.Name("nvidia.com/gpu", "").Value() != 8 {
			t.Errorf("pod %s: phase %s, limits %v", p.Name, p.Status.Phase, p.Spec.Containers[0].Resources.Limits)
		}
	}
}

// A run that needs a busy GPU class waits with Kueue's reason and starts when the other run finishes.
func TestRunWaitsForABusyClass(t *testing.T) {
	const ns = "e2e-busy"
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassMIG, factory.MIGSlicesPerNode))
	create(t, mig(run(ns, "first", 1, 56, 8*time.Second)).Obj())
	waitPhase(t, ns, "first", long, aifv1.PhaseRunning)
	create(t, mig(run(ns, "second", 1, 28, 2*time.Second)).Obj())
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		tj := get(g, ns, "second")
		g.Expect(tj.Status.Phase).To(gomega.Equal(aifv1.PhaseQueued))
		g.Expect(tj.Status.Message).To(gomega.ContainSubstring("insufficient unused quota for nvidia.com/mig-1g.10gb in flavor a100-mig-1g10gb"))
	})
	first := waitPhase(t, ns, "first", long, aifv1.PhaseSucceeded)
	second := waitPhase(t, ns, "second", long, aifv1.PhaseSucceeded)
	if second.Status.StartTime.Before(first.Status.Usage.Attempts[0].EndedAt) {
		t.Fatalf("second started at %s, before first ended at %s", second.Status.StartTime, first.Status.Usage.Attempts[0].EndedAt)
	}
}

// A tenant borrows idle GPUs of its cohort; their owner reclaims them by preemption, and the borrower resumes
// later. Deleting the runs, one in the foreground and one in the background, leaves no Job, pod, Service or
// workload and no quota held.
func TestCohortBorrowingReclaimAndDeletion(t *testing.T) {
	ctx := context.Background()
	tenant(t, builders.TenantQuota("e2e-owner").Namespaces("e2e-owner").Cohort("e2e").GPUs(factory.ClassH100, 16))
	tenant(t, builders.TenantQuota("e2e-borrower").Namespaces("e2e-borrower").Cohort("e2e").GPUs(factory.ClassH100, 8))
	create(t, run("e2e-borrower", "big", 2, 8, 5*time.Minute).Obj())
	waitPhase(t, "e2e-borrower", "big", long, aifv1.PhaseRunning)
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: "e2e-borrower"}, tq)).To(gomega.Succeed())
		g.Expect(tq.Status.GPUs).To(gomega.ContainElement(gomega.HaveField("Borrowed", int32(8))))
	})

	create(t, run("e2e-owner", "reclaim", 2, 8, 15*time.Second).Obj())
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		tj := get(g, "e2e-borrower", "big")
		g.Expect(tj.Status.Reason).To(gomega.Equal(aifv1.ReasonPreempted))
		g.Expect(tj.Status.Message).To(gomega.ContainSubstring("reclamation within the cohort"))
	})
	framework.Eventually(t, func(g gomega.Gomega) { // the Job controller removed the preempted workers
		var pods corev1.PodList
		g.Expect(f.Client.List(ctx, &pods, client.InNamespace("e2e-borrower"), client.MatchingLabels{aifv1.TrainingJobLabel: "big"})).To(gomega.Succeed())
		g.Expect(pods.Items).To(gomega.BeEmpty())
		g.Expect(get(g, "e2e-owner", "reclaim").Status.Phase).To(gomega.Equal(aifv1.PhaseRunning), "the owner runs while the borrower waits")
	})
	waitPhase(t, "e2e-owner", "reclaim", long, aifv1.PhaseSucceeded)
	waitPhase(t, "e2e-borrower", "big", long, aifv1.PhaseRunning)

	for ns, policy := range map[string]metav1.DeletionPropagation{"e2e-borrower": metav1.DeletePropagationForeground, "e2e-owner": metav1.DeletePropagationBackground} {
		tj := &aifv1.TrainingJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: map[string]string{"e2e-borrower": "big", "e2e-owner": "reclaim"}[ns]}}
		if err := f.Client.Delete(ctx, tj, client.PropagationPolicy(policy)); err != nil {
			t.Fatal(err)
		}
		framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
			sel := client.MatchingLabels{aifv1.TrainingJobLabel: tj.Name}
			var jobs batchv1.JobList
			var pods corev1.PodList
			var svcs corev1.ServiceList
			var wls kueue.WorkloadList
			g.Expect(f.Client.List(ctx, &jobs, client.InNamespace(ns), sel)).To(gomega.Succeed())
			g.Expect(f.Client.List(ctx, &pods, client.InNamespace(ns), sel)).To(gomega.Succeed())
			g.Expect(f.Client.List(ctx, &svcs, client.InNamespace(ns), sel)).To(gomega.Succeed())
			g.Expect(f.Client.List(ctx, &wls, client.InNamespace(ns))).To(gomega.Succeed())
			g.Expect(jobs.Items).To(gomega.BeEmpty(), "%s deletion leaves no Job", policy)
			g.Expect(pods.Items).To(gomega.BeEmpty(), "%s deletion leaves no pod", policy)
			g.Expect(svcs.Items).To(gomega.BeEmpty(), "%s deletion leaves no Service", policy)
			g.Expect(wls.Items).To(gomega.BeEmpty(), "%s deletion leaves no workload", policy)
			cq := &kueue.ClusterQueue{}
			g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: "tenant-" + ns}, cq)).To(gomega.Succeed())
			g.Expect(cq.Status.ReservingWorkloads).To(gomega.BeZero(), "no quota held")
			err := f.Client.Get(ctx, client.ObjectKeyFromObject(tj), &aifv1.TrainingJob{})
			g.Expect(client.IgnoreNotFound(err)).To(gomega.Succeed())
			g.Expect(err).To(gomega.HaveOccurred(), "the TrainingJob is gone")
		})
	}
}

// A failing worker fails its attempt; the run starts again once, then fails for good with both attempts
// counted, and says so in events.
func TestWorkerFailureRestartsThenFails(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-flaky"
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassH100, 8))
	create(t, builders.TrainingJob(ns, "flaky").Shape(1, 8).MaxRestarts(1).SimulatedRuntime(2*time.Second, true).Obj())
	tj := waitPhase(t, ns, "flaky", 2*long, aifv1.PhaseFailed)
	if tj.Status.Reason != aifv1.ReasonRestartsExhausted || tj.Status.Restarts != 1 || len(tj.Status.Usage.Attempts) != 2 {
		t.Fatalf("reason %s, restarts %d, attempts %+v", tj.Status.Reason, tj.Status.Restarts, tj.Status.Usage.Attempts)
	}
	var sum int64
	for _, a := range tj.Status.Usage.Attempts {
		if a.GPUSeconds <= 0 || a.EndedAt == nil {
			t.Errorf("attempt %d not counted: %+v", a.Attempt, a)
		}
		sum += a.GPUSeconds
	}
	if sum != tj.Status.Usage.GPUSeconds {
		t.Errorf("total %d, attempts sum to %d", tj.Status.Usage.GPUSeconds, sum)
	}
	var jobs batchv1.JobList
	if err := f.Client.List(ctx, &jobs, client.InNamespace(ns)); err != nil || len(jobs.Items) != 2 {
		t.Fatalf("want the two attempts' Jobs, got %d (%v)", len(jobs.Items), err)
	}
	// Events are sent in the background after the status write: wait for them.
	framework.Eventually(t, func(g gomega.Gomega) {
		var events eventsv1.EventList
		g.Expect(f.Client.List(ctx, &events, client.InNamespace(ns))).To(gomega.Succeed())
		warnings := map[string]bool{}
		for _, e := range events.Items {
			if e.Regarding.Name == "flaky" && e.Type == corev1.EventTypeWarning {
				warnings[e.Action] = true
			}
		}
		g.Expect(warnings).To(gomega.And(gomega.HaveKey(string(aifv1.PhaseRestarting)), gomega.HaveKey(string(aifv1.PhaseFailed))))
	})
}

// A dataset path that leaves the tenant's root is refused at admission, with the field named, through kubectl.
func TestDatasetPathAttackIsRefused(t *testing.T) {
	const ns = "e2e-attack"
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassH100, 8).Storage(factory.FilesystemDatasets, "/e2e-attack", aifv1.ReadOnly))
	for path, why := range map[string]string{
		"/e2e-attack/../e2e-life/corpus": "'..'",
		"/e2e-life/corpus":               "e2e-attack",
	} {
		yaml := `apiVersion: aifactory.eu/v1alpha1
kind: DatasetMount
metadata: {name: escape, namespace: ` + ns + `}
spec: {filesystem: lustre-datasets, path: "` + path + `", access: ReadOnly, classification: public}
`
		framework.Eventually(t, func(g gomega.Gomega) {
			out, err := kubectlApply(yaml)
			g.Expect(err).To(gomega.HaveOccurred(), "path %s must be refused: %s", path, out)
			g.Expect(out).To(gomega.ContainSubstring("spec.path"))
			g.Expect(out).To(gomega.ContainSubstring(why))
		})
	}
	err := f.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "escape"}, &aifv1.DatasetMount{})
	if client.IgnoreNotFound(err) != nil || err == nil {
		t.Fatalf("the refused DatasetMount must not exist: %v", err)
	}
}
