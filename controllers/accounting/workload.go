package accounting

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// Workload annotations and finalizers of the ledger.
const (
	// BaselineAnnotation records on a Kueue workload the GPU-seconds it had used before the current period.
	BaselineAnnotation = "aifactory.eu/gpu-seconds-before-period"
	// AccountingFinalizer keeps an admitted workload until its GPU-seconds are in the tenant's ledger.
	AccountingFinalizer = "aifactory.eu/gpu-accounting"
	// PastSecondsAnnotation records on a Kueue workload its admitted seconds before the admission that the
	// budget check last granted (see PastSeconds).
	PastSecondsAnnotation = "aifactory.eu/admitted-seconds-before"
)

// admissionGPUs are the GPUs of Kueue's admission of a workload: what its quota was charged, whatever container
// asked for them.
func admissionGPUs(wl *kueue.Workload, isGPU func(corev1.ResourceName) bool) int64 {
	if wl.Status.Admission == nil {
		return 0
	}
	var n int64
	for _, psa := range wl.Status.Admission.PodSetAssignments {
		for r, q := range psa.ResourceUsage {
			if isGPU(r) {
				n += q.Value()
			}
		}
	}
	return n
}

// podGPUs are the GPUs one pod takes, as Kueue and the scheduler count them: its containers and sidecars
// together, or its largest init container if that is more.
func podGPUs(s *corev1.PodSpec, isGPU func(corev1.ResourceName) bool) int64 {
	of := func(c *corev1.Container) int64 {
		var n int64
		for r, q := range c.Resources.Requests {
			if isGPU(r) {
				n += q.Value()
			}
		}
		for r, q := range c.Resources.Limits {
			if _, hasRequest := c.Resources.Requests[r]; !hasRequest && isGPU(r) {
				n += q.Value()
			}
		}
		return n
	}
	var containers, sidecars, init int64
	for i := range s.Containers {
		containers += of(&s.Containers[i])
	}
	for i := range s.InitContainers {
		c := &s.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars += of(c) // a sidecar keeps running beside what starts after it
		} else {
			init = max(init, sidecars+of(c))
		}
	}
	return max(containers+sidecars, init)
}

// PastSeconds is the admitted time of the workload's earlier admissions. Kueue keeps it in
// accumulatedPastExecutionTimeSeconds, but clears that field when it stops a workload at its maximum execution
// time, keeping only the last admission: then the figure recorded when the last admission was granted
// (PastSecondsAnnotation) is added back.
func PastSeconds(wl *kueue.Workload) int64 {
	past := int64(ptr.Deref(wl.Status.AccumulatedPastExecutionTimeSeconds, 0))
	before, err := strconv.ParseInt(wl.Annotations[PastSecondsAnnotation], 10, 64)
	if err != nil || before <= 0 {
		return past
	}
	if StoppedAtMaxExecution(wl) {
		return before + past
	}
	return past
}

// StoppedAtMaxExecution tells whether Kueue stopped the workload at its maximum execution time, after which its
// accumulatedPastExecutionTimeSeconds holds the last admission only.
func StoppedAtMaxExecution(wl *kueue.Workload) bool {
	stopped := func(t string) bool {
		c := apimeta.FindStatusCondition(wl.Status.Conditions, t)
		return c != nil && c.Status == metav1.ConditionTrue && strings.HasSuffix(c.Reason, kueue.WorkloadMaximumExecutionTimeExceeded)
	}
	return stopped(kueue.WorkloadDeactivationTarget) || stopped(kueue.WorkloadEvicted)
}

// UsageOf reads what the ledger needs from a Kueue workload. GPUs are those of Kueue's admission while it is
// admitted, and otherwise its pods' requests of GPU resources (requests, or limits where only limits are set)
// times the pod counts.
func UsageOf(wl *kueue.Workload, isGPU func(corev1.ResourceName) bool) WorkloadUsage {
	u := WorkloadUsage{
		UID:         wl.UID,
		Created:     wl.CreationTimestamp.UTC(),
		PastSeconds: PastSeconds(wl),
		Deleting:    wl.DeletionTimestamp != nil,
	}
	u.GPUs = admissionGPUs(wl, isGPU)
	if wl.Status.Admission == nil {
		// Not admitted now (queued, or evicted after an earlier admission): what its pods would take.
		u.GPUs = 0
		for _, ps := range wl.Spec.PodSets {
			u.GPUs += podGPUs(&ps.Template.Spec, isGPU) * int64(ps.Count)
		}
	}
	if c := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadAdmitted); c != nil && c.Status == metav1.ConditionTrue {
		u.AdmittedAt = ptr.To(c.LastTransitionTime.UTC())
		if f := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadFinished); f != nil && f.Status == metav1.ConditionTrue {
			u.EndedAt = ptr.To(f.LastTransitionTime.UTC())
		} else if wl.DeletionTimestamp != nil {
			u.EndedAt = ptr.To(wl.DeletionTimestamp.UTC())
		}
	}
	if s, ok := wl.Annotations[BaselineAnnotation]; ok {
		if b, err := ParseBaseline(s); err == nil {
			u.Baseline = &b
		}
	}
	u.Key = wl.Namespace + "/" + wl.Name
	u.Finished = apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadFinished)
	u.QuotaReserved = apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadQuotaReserved) && !u.Finished
	for _, c := range wl.Status.AdmissionChecks {
		if c.Name == aifv1.BudgetCheckName {
			u.Check = c.State
		}
	}
	return u
}
