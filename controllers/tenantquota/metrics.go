package tenantquota

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
)

var (
	gpuSecondsUsed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "aifactory_tenant_gpu_seconds_used",
		Help: "GPU-seconds the tenant used in the current budget period.",
	}, []string{"tenant"})
	budgetRemaining = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "aifactory_tenant_budget_remaining_gpu_seconds",
		Help: "GPU-seconds left of the tenant's budget in the current period (absent for tenants without a budget).",
	}, []string{"tenant"})
	budgetReserved = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "aifactory_tenant_budget_reserved_gpu_seconds",
		Help: "GPU-seconds that the tenant's admitted work may still use before its run bounds (absent for tenants without a budget).",
	}, []string{"tenant"})
	admittedGPUs = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "aifactory_tenant_admitted_gpus",
		Help: "GPUs held by the tenant's admitted workloads.",
	}, []string{"tenant"})
)

func init() {
	metrics.Registry.MustRegister(gpuSecondsUsed, budgetRemaining, budgetReserved, admittedGPUs)
}

// observeMetrics publishes the tenant's figures, or removes them once the tenant is being deleted.
func observeMetrics(tq *aifv1.TenantQuota, acc accounting.Account, reserved int64) {
	if tq.DeletionTimestamp != nil {
		gpuSecondsUsed.DeleteLabelValues(tq.Name)
		budgetRemaining.DeleteLabelValues(tq.Name)
		budgetReserved.DeleteLabelValues(tq.Name)
		admittedGPUs.DeleteLabelValues(tq.Name)
		return
	}
	gpuSecondsUsed.WithLabelValues(tq.Name).Set(float64(acc.UsedGPUSeconds))
	admittedGPUs.WithLabelValues(tq.Name).Set(float64(tq.Status.AdmittedGPUs))
	if b := tq.Spec.Budget; b != nil {
		budgetRemaining.WithLabelValues(tq.Name).Set(float64(max(b.GPUHours*3600-acc.UsedGPUSeconds, 0)))
		budgetReserved.WithLabelValues(tq.Name).Set(float64(reserved))
	} else {
		budgetRemaining.DeleteLabelValues(tq.Name)
		budgetReserved.DeleteLabelValues(tq.Name)
	}
}
