// Package tenantquota tests the TenantQuota and GPU class controllers on a real kube-apiserver and etcd with the
// stock Kueue manager running as its own process: admission, borrowing and preemption are Kueue's own.
// envtest runs no Job controller, garbage collector or kubelet: where a test needs a Job to finish or a
// deleted Job's workload to go, it does that step itself and says so.
package tenantquota

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenantquota"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

var (
	env *framework.Env
	c   client.Client
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if env, err = framework.Start(framework.WithWebhooks()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	c = env.Client
	k, err := env.StartKueue(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = k.Stop() }()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "Kueue's log: %s\n", k.Log)
	} else {
		_ = os.Remove(k.Log)
	}
	return code
}

// testConfig has the two GPU classes of the local factory.
func testConfig() *configv1.Configuration {
	return &configv1.Configuration{
		TypeMeta: metav1.TypeMeta{APIVersion: configv1.APIVersion, Kind: configv1.Kind},
		GPUClasses: []configv1.GPUClass{
			{Name: builders.GPUClassH100, Resource: "nvidia.com/gpu", NodeLabels: map[string]string{"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, PowerWatts: 700},
			{Name: builders.GPUClassMIG, Resource: builders.MIGResource, NodeLabels: map[string]string{"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}, PowerWatts: 57},
		},
	}
}

// startOperator runs the operator for the rest of the test with a fake clock set to the real time.
func startOperator(t *testing.T, cfg *configv1.Configuration, clk *testingclock.FakeClock) *framework.Operator {
	t.Helper()
	op, err := env.StartOperator(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Stop() })
	return op
}

func newClock() *testingclock.FakeClock {
	return testingclock.NewFakeClock(time.Now().UTC().Truncate(time.Second))
}

func setup(t *testing.T, tenants ...*aifv1.TenantQuota) {
	t.Helper()
	ctx := context.Background()
	for _, tq := range tenants {
		if err := env.CreateNamespaces(ctx, tq.Spec.Namespaces...); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, tq); err != nil {
			t.Fatal(err)
		}
	}
}

func get[T client.Object](t *testing.T, obj T) T {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

var pokes int

// poke makes the operator look at a tenant again after the fake clock moved: time alone triggers nothing in
// a fake clock, while in production the operator requeues itself for the next deadline.
func poke(t *testing.T, name string) {
	t.Helper()
	pokes++
	tq := &aifv1.TenantQuota{}
	tq.Name = name
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"test.aifactory.eu/poke":%q}}}`, strconv.Itoa(pokes)))
	if err := c.Patch(context.Background(), tq, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}

func submit(t *testing.T, job *batchv1.Job) *batchv1.Job {
	t.Helper()
	// Kueue manages Jobs only in namespaces that its managedJobsNamespaceSelector matches, and judges a Job when
	// it is created: as a tenant would, submit once the operator has labelled the namespace as the tenant's.
	framework.Eventually(t, func(g gomega.Gomega) {
		ns := &corev1.Namespace{}
		g.Expect(c.Get(context.Background(), client.ObjectKey{Name: job.Namespace}, ns)).To(gomega.Succeed())
		g.Expect(ns.Labels).To(gomega.HaveKey(aifv1.TenantLabel))
	})
	if err := c.Create(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	return job
}

// complete waits until Kueue has started the job and then marks it succeeded (simulated: envtest has no Job
// controller).
func complete(t *testing.T, job *batchv1.Job) {
	t.Helper()
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(framework.CompleteJob(context.Background(), c, job)).To(gomega.Succeed())
	})
}

// waitsForQuota checks for a while that the job's workload exists and is not admitted.
func waitsForQuota(t *testing.T, job *batchv1.Job) {
	t.Helper()
	framework.Eventually(t, func(g gomega.Gomega) { workload(g, job) })
	framework.Consistently(t, func(g gomega.Gomega) {
		_, err := framework.AdmittedAt(workload(g, job))
		g.Expect(err).To(gomega.HaveOccurred())
	})
}

func workload(g gomega.Gomega, job *batchv1.Job) *kueue.Workload {
	wl, err := framework.WorkloadOf(context.Background(), c, job)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	return wl
}

// admitted waits until Kueue admitted the job's workload and returns when.
func admitted(t *testing.T, job *batchv1.Job) time.Time {
	t.Helper()
	var at time.Time
	framework.Eventually(t, func(g gomega.Gomega) {
		var err error
		at, err = framework.AdmittedAt(workload(g, job))
		g.Expect(err).NotTo(gomega.HaveOccurred())
	})
	return at
}

// updateTenant changes a tenant's spec the way a person would: read, change, write, again on conflict.
func updateTenant(t *testing.T, name string, change func(*aifv1.TenantQuota)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tq := tenant(t, name)
		change(tq)
		return c.Update(context.Background(), tq)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func tenant(t *testing.T, name string) *aifv1.TenantQuota {
	t.Helper()
	return get(t, &aifv1.TenantQuota{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

func clusterQueue(g gomega.Gomega, tenant string) *kueue.ClusterQueue {
	cq := &kueue.ClusterQueue{}
	g.Expect(c.Get(context.Background(), client.ObjectKey{Name: tenantquota.ClusterQueueName(tenant)}, cq)).To(gomega.Succeed())
	return cq
}

func condition(tq *aifv1.TenantQuota, t string) metav1.Condition {
	for _, cond := range tq.Status.Conditions {
		if cond.Type == t {
			return cond
		}
	}
	return metav1.Condition{}
}

func h100Job(ns, name string, pods int32) *batchv1.Job {
	return builders.Job(ns, name, "default", pods, corev1.ResourceName("nvidia.com/gpu"), 8)
}
