package trainingjob

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

func TestObserveCountsEachChangeOnce(t *testing.T) {
	tj := builders.TrainingJob("ns", "run").Obj()
	tj.CreationTimestamp = at(0)
	queued := aifv1.TrainingJobStatus{Usage: &aifv1.Usage{Attempts: []aifv1.AttemptUsage{{Attempt: 0}}}}
	admitted := aifv1.TrainingJobStatus{Usage: &aifv1.Usage{Attempts: []aifv1.AttemptUsage{{Attempt: 0, GPUClass: "h100-80gb", AdmittedAt: ptr.To(at(90 * time.Second))}}}}
	ended := *admitted.DeepCopy()
	ended.Usage.Attempts[0].EndedAt, ended.Usage.Attempts[0].GPUSeconds = ptr.To(at(time.Hour)), 1000
	power := func(string) int32 { return 700 }

	waits := testutil.CollectAndCount(queueWait)
	recordMetrics("metrics-tenant", tj, nil, &queued, &admitted, power)
	recordMetrics("metrics-tenant", tj, nil, &admitted, &admitted, power) // a later write with no change
	recordMetrics("metrics-tenant", tj, nil, &admitted, &ended, power)
	recordMetrics("metrics-tenant", tj, nil, &ended, &ended, power)
	if got := testutil.CollectAndCount(queueWait) - waits; got != 1 {
		t.Errorf("want one new wait series, got %d", got)
	}
	if got := testutil.ToFloat64(gpuSeconds.WithLabelValues("metrics-tenant", "h100-80gb")); got != 1000 {
		t.Errorf("GPU-seconds %v, want 1000", got)
	}
	if got := testutil.ToFloat64(energy.WithLabelValues("metrics-tenant", "h100-80gb")); got != 700000 {
		t.Errorf("energy %v, want 700000", got)
	}
}

func TestCountByPhase(t *testing.T) {
	run := func(ns string, phase aifv1.TrainingJobPhase) aifv1.TrainingJob {
		tj := builders.TrainingJob(ns, "r").Obj()
		tj.Status.Phase = phase
		return *tj
	}
	tenants := []aifv1.TenantQuota{{ObjectMeta: metav1.ObjectMeta{Name: "medai"}, Spec: aifv1.TenantQuotaSpec{Namespaces: []string{"medai-dev", "medai-prod"}}}}
	got := CountByPhase([]aifv1.TrainingJob{run("medai-dev", aifv1.PhaseRunning), run("medai-prod", aifv1.PhaseRunning), run("medai-dev", ""), run("other", aifv1.PhaseQueued)}, tenants)
	want := map[[2]string]int{{"medai", "Running"}: 2, {"medai", "Pending"}: 1, {"", "Queued"}: 1}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%v: got %d, want %d", k, got[k], n)
		}
	}
}
