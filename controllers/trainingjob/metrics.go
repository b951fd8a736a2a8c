package trainingjob

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

var (
	queueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "aifactory_trainingjob_queue_wait_seconds",
		Help: "Time from when an attempt of a run was handed to Kueue to when Kueue first admitted it.",
		// From seconds to two days: interactive runs wait seconds, big runs on a busy factory hours.
		Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, 172800},
	}, []string{"tenant"})
	gpuSeconds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aifactory_trainingjob_gpu_seconds_total",
		Help: "GPU-seconds of ended attempts of training runs, by tenant and GPU class.",
	}, []string{"tenant", "gpu_class"})
	energy = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aifactory_trainingjob_energy_joules_total",
		Help: "Estimated energy of ended attempts of training runs (GPU-seconds times the class's power), by tenant and GPU class.",
	}, []string{"tenant", "gpu_class"})
	phaseDesc = prometheus.NewDesc("aifactory_trainingjobs",
		"Training runs by tenant and phase.", []string{"tenant", "phase"}, nil)
)

// phases counts runs by phase at scrape time; SetupWithManager gives it the manager's cache.
var phases = &phaseCollector{}

func init() {
	metrics.Registry.MustRegister(queueWait, gpuSeconds, energy, phases)
}

// recordMetrics records what changed between two statuses of a run: attempts admitted for the first time (their
// wait) and attempts that ended (their GPU-seconds and energy). It is called once per status write, so each
// change is counted once by the replica that wrote it.
//
// The wait of an attempt runs from its Job's creation (the run was handed to Kueue), or from the run's creation
// when the Job is not known.
func recordMetrics(tenant string, tj *aifv1.TrainingJob, job *batchv1.Job, old, now *aifv1.TrainingJobStatus, power func(class string) int32) {
	if tenant == "" || now.Usage == nil {
		return
	}
	for i, a := range now.Usage.Attempts {
		var before aifv1.AttemptUsage
		if old.Usage != nil && i < len(old.Usage.Attempts) {
			before = old.Usage.Attempts[i]
		}
		if before.AdmittedAt == nil && a.AdmittedAt != nil {
			queued := tj.CreationTimestamp.Time
			if job != nil && job.Name == JobName(tj, a.Attempt) {
				queued = job.CreationTimestamp.Time
			}
			queueWait.WithLabelValues(tenant).Observe(max(a.AdmittedAt.Sub(queued), 0).Seconds())
		}
		if before.EndedAt == nil && a.EndedAt != nil && a.GPUSeconds > 0 {
			gpuSeconds.WithLabelValues(tenant, a.GPUClass).Add(float64(a.GPUSeconds))
			energy.WithLabelValues(tenant, a.GPUClass).Add(float64(a.GPUSeconds) * float64(power(a.GPUClass)))
		}
	}
}

// phaseCollector counts training runs by tenant and phase at scrape time, from the manager's cache.
type phaseCollector struct {
	mu     sync.Mutex
	reader client.Reader
}

func (c *phaseCollector) use(r client.Reader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reader = r
}

func (c *phaseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- phaseDesc }

func (c *phaseCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	reader := c.reader
	c.mu.Unlock()
	if reader == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var jobs aifv1.TrainingJobList
	var tenants aifv1.TenantQuotaList
	if reader.List(ctx, &jobs) != nil || reader.List(ctx, &tenants) != nil {
		return
	}
	for key, n := range CountByPhase(jobs.Items, tenants.Items) {
		ch <- prometheus.MustNewConstMetric(phaseDesc, prometheus.GaugeValue, float64(n), key[0], key[1])
	}
}

// CountByPhase counts runs by tenant (the TenantQuota of their namespace, "" for none) and phase.
func CountByPhase(jobs []aifv1.TrainingJob, tenants []aifv1.TenantQuota) map[[2]string]int {
	owner := map[string]string{}
	for _, tq := range tenants {
		for _, ns := range tq.Spec.Namespaces {
			if _, taken := owner[ns]; !taken {
				owner[ns] = tq.Name
			}
		}
	}
	out := map[[2]string]int{}
	for _, tj := range jobs {
		phase := string(tj.Status.Phase)
		if phase == "" {
			phase = string(aifv1.PhasePending)
		}
		out[[2]string{owner[tj.Namespace], phase}]++
	}
	return out
}
