package tenantquota

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// KueueAdmissionGate is the scheduling gate that Kueue's Pod integration puts on the pods it manages until it
// admits them.
const KueueAdmissionGate = "kueue.x-k8s.io/admission"

// ProbePodPrefix starts the generated names of the gating probe's dry-run Pods; nothing is ever stored.
const ProbePodPrefix = "aifactory-gating-probe-"

// How soon a namespace is probed again: where Kueue did not gate the probe, soon (Kueue may not have seen the
// namespace's labels yet, or its configuration may be mended); where it did, now and then, so that a Kueue
// reconfigured later is noticed.
const (
	reprobeUngated = time.Minute
	reprobeGated   = 10 * time.Minute
)

// gatingProbe remembers, per namespace, whether a GPU Pod there is gated by Kueue, so that each namespace is
// probed once while its labels stay the same (and again a minute after a probe that found no gate).
type gatingProbe struct {
	mu      sync.Mutex
	results map[string]probeResult
}

type probeResult struct {
	labels  string    // the namespace labels the probe saw
	ungated string    // why a GPU Pod would not be gated; empty when it would be
	at      time.Time // when the probe ran
}

// Ungated probes the tenant's namespaces whose result is missing or due, and returns, per namespace, why a
// plain GPU Pod there would not be gated by Kueue (no entry: it would be); whether every namespace has a result
// (one not yet labelled as the tenant's has none: Kueue would not judge it as the tenant's either); and when the
// next probe is due. The probe is a dry-run create of a Pod that asks for one GPU and passes Pod Security
// "restricted": the API server runs every admission webhook and policy on it, Kueue's included, and stores
// nothing. It is the one request of a pass that is not a cache read, made when a namespace's labels changed or
// its result is due.
func (p *gatingProbe) Ungated(ctx context.Context, c client.Client, tenant string, labels map[string]map[string]string, now time.Time) (map[string]string, bool, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.results == nil {
		p.results = map[string]probeResult{}
	}
	out, complete, next := map[string]string{}, true, time.Duration(0)
	for _, ns := range sortedKeys(labels) {
		l := labels[ns]
		if l[aifv1.TenantLabel] != tenant {
			complete = false
			continue
		}
		key := fmt.Sprint(l)
		r, ok := p.results[ns]
		if !ok || r.labels != key || now.Sub(r.at) >= r.every() {
			r = probeResult{labels: key, ungated: probe(ctx, c, ns), at: now}
			p.results[ns] = r
		}
		if r.ungated != "" {
			out[ns] = r.ungated
		}
		if due := r.every() - now.Sub(r.at); next == 0 || due < next {
			next = due
		}
	}
	return out, complete && len(labels) > 0, next
}

func (r probeResult) every() time.Duration {
	if r.ungated != "" {
		return reprobeUngated
	}
	return reprobeGated
}

func probe(ctx context.Context, c client.Client, ns string) string {
	one := corev1.ResourceList{configv1.DefaultGPUResource: resource.MustParse("1")}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: ProbePodPrefix, Labels: map[string]string{aifv1.ManagedByLabel: aifv1.ManagedByValue}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name: "probe", Image: "gating-probe.invalid/never-runs", Resources: corev1.ResourceRequirements{Requests: one, Limits: one},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
	if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
		return fmt.Sprintf("the dry-run GPU Pod was refused, so the probe cannot tell: %v", err)
	}
	if !slices.ContainsFunc(pod.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == KueueAdmissionGate }) {
		return "a GPU Pod without a queue would not be gated by Kueue and would run outside the tenant's quota and budget"
	}
	return ""
}

// isolatedCondition reports the probe's findings.
func isolatedCondition(tq *aifv1.TenantQuota, ungated map[string]string) metav1.Condition {
	c := metav1.Condition{Type: aifv1.ConditionIsolated, Status: metav1.ConditionTrue, Reason: aifv1.ReasonKueueGatesPods, ObservedGeneration: tq.Generation,
		Message: "Kueue gates GPU Pods in every namespace of the tenant"}
	if len(ungated) == 0 {
		return c
	}
	ns := sortedKeys(ungated)
	c.Status, c.Reason = metav1.ConditionFalse, aifv1.ReasonPodsNotGated
	c.Message = fmt.Sprintf("namespace %s: %s; run Kueue with manageJobsWithoutQueueName, managedJobsNamespaceSelector on %s and the pod integration (docs/isolation.md)",
		ns[0], ungated[ns[0]], aifv1.TenantLabel)
	if len(ns) > 1 {
		c.Message += fmt.Sprintf("; %d more namespaces alike", len(ns)-1)
	}
	return c
}
