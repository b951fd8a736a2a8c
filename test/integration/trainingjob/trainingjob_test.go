// Package trainingjob tests the TrainingJob controller on a real kube-apiserver and etcd with the stock Kueue
// manager running as its own process. envtest runs no Job controller, PV binder or kubelet: where a test needs a
// claim bound or a Job finished, it writes that status itself and says so.
package trainingjob

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount"
	"github.com/aifactory-eu/aifactory-operator/controllers/trainingjob"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

const ns = "tj-medai"

var (
	env *framework.Env
	c   client.Client
	op  *framework.Operator
	cfg *configv1.Configuration
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	if env, err = framework.Start(framework.WithWebhooks()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	c = env.Client
	ctx := context.Background()
	k, err := env.StartKueue(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = k.Stop() }()
	// The filesystems are folders of this machine, where the operator resolves dataset paths.
	data, err := os.MkdirTemp("", "aifactory-filesystems-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(data) }()
	cfg = &configv1.Configuration{
		TypeMeta: metav1.TypeMeta{APIVersion: configv1.APIVersion, Kind: configv1.Kind},
		Filesystems: []configv1.Filesystem{
			{Name: builders.FilesystemData, HostPath: &configv1.HostPathFilesystem{Root: filepath.Join(data, "datasets")}},
			{Name: builders.FilesystemScratch, HostPath: &configv1.HostPathFilesystem{Root: filepath.Join(data, "scratch")}},
		},
		GPUClasses: []configv1.GPUClass{{Name: builders.GPUClassH100, Resource: "nvidia.com/gpu", PowerWatts: 700,
			NodeLabels: map[string]string{"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}}},
		// Exceptions the platform grants every tenant (policy_test.go).
		PodPolicy: configv1.PodPolicy{ServiceAccounts: []string{"trainer"}, StorageClasses: []string{"local-scratch"}},
	}
	// The real clock: runs are timed by Kueue's own condition times, and deadlines by the workqueue.
	op, err = env.StartOperator(cfg, clock.RealClock{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = op.Stop() }()
	for _, p := range []struct {
		name  string
		value int32
	}{{"low", 100}, {"high", 1000}} {
		wpc := &kueue.WorkloadPriorityClass{ObjectMeta: metav1.ObjectMeta{Name: p.name}, Value: p.value}
		if err := c.Create(ctx, wpc); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := env.CreateNamespaces(ctx, ns, rdmaNS); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tq := builders.TenantQuota("tj-medai").Namespaces(ns).GPUs(builders.GPUClassH100, 16).Storage(builders.FilesystemData, "/medai", aifv1.ReadOnly).Obj()
	// A tenant granted IPC_LOCK for RDMA over InfiniBand, which only the privileged Pod Security level passes.
	rdma := builders.TenantQuota(rdmaNS).Namespaces(rdmaNS).GPUs(builders.GPUClassH100, 8).Obj()
	rdma.Spec.PodPolicy = &aifv1.TenantPodPolicy{PodSecurityLevel: aifv1.PodSecurityPrivileged, AllowedCapabilities: []string{"IPC_LOCK"}}
	for _, o := range []*aifv1.TenantQuota{tq, rdma} {
		if err := c.Create(ctx, o); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "Kueue's log: %s\n", k.Log)
	} else {
		_ = os.Remove(k.Log)
	}
	return code
}

func trainingJob(g gomega.Gomega, name string) *aifv1.TrainingJob {
	tj := &aifv1.TrainingJob{}
	g.Expect(c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, tj)).To(gomega.Succeed())
	return tj
}

// A run waits, with the reason, until its dataset is ready; then it is queued as a suspended Indexed Job, Kueue
// admits it on the H100 class, and it succeeds when its Job completes.
func TestRunIsAcceptedAdmittedAndFinished(t *testing.T) {
	ctx := context.Background()
	tj := builders.TrainingJob(ns, "xray").Shape(2, 8).Dataset("xray-data", "/data").Obj()
	if err := c.Create(ctx, tj); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		got := trainingJob(g, "xray")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhasePending))
		g.Expect(got.Status.Reason).To(gomega.Equal(aifv1.ReasonDatasetNotReady))
		g.Expect(got.Status.GPUs).To(gomega.Equal(int32(16)))
	})
	framework.Consistently(t, func(g gomega.Gomega) {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: trainingjob.JobName(tj, 0)}, &batchv1.Job{})
		g.Expect(err).To(gomega.HaveOccurred(), "nothing goes to Kueue before the dataset is ready")
	})

	dsm := builders.DatasetMount(ns, "xray-data", "/medai/xray").Obj()
	readyDataset(t, dsm) // the claim is bound by the test: envtest runs no PersistentVolume binder

	job := &batchv1.Job{}
	framework.Eventually(t, func(g gomega.Gomega) {
		got := trainingJob(g, "xray")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseAdmitted))
		g.Expect(got.Status.Admission).To(gomega.Equal(&aifv1.AdmissionStatus{GPUClass: builders.GPUClassH100, GPUs: 16}))
		g.Expect(got.Status.Queue.ClusterQueue).To(gomega.Equal("tenant-tj-medai"))
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: trainingjob.JobName(tj, 0)}, job)).To(gomega.Succeed())
		g.Expect(*job.Spec.Suspend).To(gomega.BeFalse(), "Kueue unsuspends the admitted job")
		g.Expect(job.Spec.Template.Spec.NodeSelector).To(gomega.HaveKeyWithValue("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"))
	})
	if v := job.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim; v.ClaimName != datasetmount.ClaimName(dsm) || !v.ReadOnly {
		t.Fatalf("dataset volume: %+v", v)
	}

	framework.Eventually(t, func(g gomega.Gomega) { // simulated: no Job controller in envtest
		g.Expect(framework.CompleteJob(ctx, c, job)).To(gomega.Succeed())
	})
	framework.Eventually(t, func(g gomega.Gomega) {
		got := trainingJob(g, "xray")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseSucceeded))
		g.Expect(got.Status.CompletionTime).NotTo(gomega.BeNil())
	})
}

// A run larger than the tenant's quota waits in Kueue with Kueue's own figures in its status.
func TestRunBeyondQuotaWaitsWithKueuesReason(t *testing.T) {
	tj := builders.TrainingJob(ns, "too-big").Shape(3, 8).Obj()
	if err := c.Create(context.Background(), tj); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		got := trainingJob(g, "too-big")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhaseQueued))
		g.Expect(got.Status.Reason).To(gomega.Equal(aifv1.ReasonPending))
		g.Expect(got.Status.Message).To(gomega.ContainSubstring("nvidia.com/gpu in flavor h100-80gb"))
	})
}
