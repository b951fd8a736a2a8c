package e2e

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/podpolicy"
	"github.com/aifactory-eu/aifactory-operator/internal/factory"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// kubectlApply applies yaml with the real kubectl and returns its output and error.
func kubectlApply(yaml string) (string, error) {
	cmd := exec.Command(kubectl, "--kubeconfig", f.Kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(yaml)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The escapes a tenant engineer tried on the factory, through kubectl: each is refused at admission with the
// field named, and nothing of it is stored.
func TestTemplateEscapesAreRefusedThroughKubectl(t *testing.T) {
	const ns = "e2e-escape"
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassH100, 8))
	head := "apiVersion: aifactory.eu/v1alpha1\nkind: TrainingJob\nmetadata: {name: escape, namespace: " + ns + "}\n" +
		"spec:\n  nodes: 1\n  gpusPerNode: 8\n  template:\n    spec:\n"
	trainer := "      - {name: trainer, image: registry.example.eu/t:1%s}\n"
	for name, tc := range map[string]struct{ spec, field string }{
		"hostPath /":       {"      volumes: [{name: root, hostPath: {path: /}}]\n      containers:\n" + strings.Replace(trainer, "%s", "", 1), "spec.template.spec.volumes[0].hostPath"},
		"host namespaces":  {"      hostPID: true\n      hostNetwork: true\n      containers:\n" + strings.Replace(trainer, "%s", "", 1), "spec.template.spec.hostPID"},
		"root + SYS_ADMIN": {"      containers:\n" + strings.Replace(trainer, "%s", ", securityContext: {runAsUser: 0, capabilities: {add: [SYS_ADMIN]}}", 1), "capabilities.add[0]"},
		"privileged":       {"      containers:\n" + strings.Replace(trainer, "%s", ", securityContext: {privileged: true}", 1), "securityContext.privileged"},
		"node name":        {"      nodeName: gpu-h100-0\n      containers:\n" + strings.Replace(trainer, "%s", "", 1), "spec.template.spec.nodeName"},
		"node-critical":    {"      priorityClassName: system-node-critical\n      containers:\n" + strings.Replace(trainer, "%s", "", 1), "spec.template.spec.priorityClassName"},
		"foreign identity": {"      serviceAccountName: kueue-controller-manager\n      containers:\n" + strings.Replace(trainer, "%s", "", 1), "spec.template.spec.serviceAccountName"},
		"sidecar GPU": {"      initContainers:\n      - {name: miner, image: x, restartPolicy: Always, resources: {limits: {nvidia.com/gpu: 8}}}\n      containers:\n" +
			strings.Replace(trainer, "%s", "", 1), "spec.template.spec.initContainers[0].resources.limits[nvidia.com/gpu]"},
	} {
		framework.Eventually(t, func(g gomega.Gomega) {
			out, err := kubectlApply(head + tc.spec)
			g.Expect(err).To(gomega.HaveOccurred(), "%s must be refused: %s", name, out)
			g.Expect(out).To(gomega.ContainSubstring(tc.field), name)
		})
	}
	out, err := kubectlApply(strings.Replace(head, "name: escape", "name: run.v2", 1) + "      containers:\n" + strings.Replace(trainer, "%s", "", 1))
	if err == nil || !strings.Contains(out, "metadata.name must be a DNS label") {
		t.Errorf("a name that is no Service name must be refused: %v: %s", err, out)
	}
	out, err = kubectlApply(head + "      containers:\n" + strings.Replace(trainer, "%s", "", 1) + "  datasets: [{name: xray.v3, mountPath: /data}]\n")
	if err == nil || !strings.Contains(out, "spec.datasets[0].name") {
		t.Errorf("a dataset reference that is no volume name must be refused: %v: %s", err, out)
	}
	if err := f.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "escape"}, &aifv1.TrainingJob{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a refused TrainingJob must not exist: %v", err)
	}
}

// restrictedPod is a plain Pod that passes Pod Security "restricted" and asks for GPUs, as a tenant would write
// it to bypass TrainingJobs.
func restrictedPod(ns, name string, gpus int64) *corev1.Pod {
	q := corev1.ResourceList{"nvidia.com/gpu": *resource.NewQuantity(gpus, resource.DecimalSI)}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Tolerations:     []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			Containers: []corev1.Container{{
				Name: "miner", Image: builders.TrainerImage, Resources: corev1.ResourceRequirements{Requests: q, Limits: q},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
}

func gated(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == "kueue.x-k8s.io/admission" })
}

// Plain Pods and Jobs with GPUs in a tenant namespace never bypass the tenant's queue: Kueue (run with
// manageJobsWithoutQueueName and the Pod integration on tenant namespaces) gates them, queues them in the
// tenant's LocalQueue and counts them in its ClusterQueue and budget. A second Pod beyond the quota stays gated.
// The namespace enforces Pod Security: a privileged Pod is refused by the API server.
func TestPlainGPUWorkIsQueuedAndCounted(t *testing.T) {
	const ns = "e2e-plain"
	ctx := context.Background()
	tenant(t, builders.TenantQuota(ns).Namespaces(ns).GPUs(factory.ClassH100, 8).Budget(1000, aifv1.PeriodMonth, aifv1.ExhaustedHold))
	framework.Eventually(t, func(g gomega.Gomega) {
		got := &corev1.Namespace{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: ns}, got)).To(gomega.Succeed())
		g.Expect(got.Labels).To(gomega.HaveKeyWithValue(podpolicy.EnforceLabel, "restricted"))
		g.Expect(got.Labels).To(gomega.HaveKeyWithValue(aifv1.TenantLabel, ns))
		lq := &kueue.LocalQueue{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "default"}, lq)).To(gomega.Succeed())
		// The operator's dry-run probe confirms that Kueue gates GPU Pods here.
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		g.Expect(apimeta.IsStatusConditionTrue(tq.Status.Conditions, aifv1.ConditionIsolated)).To(gomega.BeTrue(), "%v", tq.Status.Conditions)
	})

	privileged := restrictedPod(ns, "root", 0)
	privileged.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	privileged.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
	err := f.Client.Create(ctx, privileged)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "restricted:latest"`) {
		t.Fatalf("a privileged Pod must be refused by Pod Security: %v", err)
	}

	first := restrictedPod(ns, "miner-1", 8)
	create(t, first)
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		p := &corev1.Pod{}
		g.Expect(f.Client.Get(ctx, client.ObjectKeyFromObject(first), p)).To(gomega.Succeed())
		g.Expect(p.Labels).To(gomega.HaveKeyWithValue("kueue.x-k8s.io/queue-name", "default"), "Kueue queued it in the tenant's LocalQueue")
		g.Expect(gated(p)).To(gomega.BeFalse(), "admitted within the quota")
		g.Expect(p.Spec.NodeName).To(gomega.HavePrefix("gpu-h100-"))
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		g.Expect(tq.Status.AdmittedGPUs).To(gomega.Equal(int32(8)), "counted in the tenant's ClusterQueue")
	})
	second := restrictedPod(ns, "miner-2", 8)
	create(t, second)
	framework.Consistently(t, func(g gomega.Gomega) {
		p := &corev1.Pod{}
		g.Expect(f.Client.Get(ctx, client.ObjectKeyFromObject(second), p)).To(gomega.Succeed())
		g.Expect(gated(p)).To(gomega.BeTrue(), "beyond the quota it waits at Kueue's gate")
		g.Expect(p.Spec.NodeName).To(gomega.BeEmpty())
	})

	// A plain Job without a queue name: suspended by Kueue and queued in the same LocalQueue.
	job := builders.Job(ns, "plain-job", "", 1, "nvidia.com/gpu", 8)
	delete(job.Labels, "kueue.x-k8s.io/queue-name")
	job.Spec.Suspend = ptr.To(false)
	job.Spec.Template.Spec.SecurityContext = restrictedPod(ns, "", 0).Spec.SecurityContext
	job.Spec.Template.Spec.Containers[0].SecurityContext = restrictedPod(ns, "", 0).Spec.Containers[0].SecurityContext
	create(t, job)
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		got := &batchv1.Job{}
		g.Expect(f.Client.Get(ctx, client.ObjectKeyFromObject(job), got)).To(gomega.Succeed())
		g.Expect(ptr.Deref(got.Spec.Suspend, false)).To(gomega.BeTrue(), "Kueue holds it: the quota is taken")
		var wls kueue.WorkloadList
		g.Expect(f.Client.List(ctx, &wls, client.InNamespace(ns))).To(gomega.Succeed())
		queued := 0
		for _, wl := range wls.Items {
			if wl.Spec.QueueName == "default" {
				queued++
			}
		}
		g.Expect(queued).To(gomega.Equal(3), "both Pods and the Job are workloads of the tenant's LocalQueue")
	})

	// A Pod that names the Job as its owner: Kueue's webhook leaves such a Pod to the Job's management, so only
	// the tenant pod admission policy (config/policy) stops it from running on a GPU node outside the quota.
	framework.Eventually(t, func(g gomega.Gomega) {
		owner := &batchv1.Job{}
		g.Expect(f.Client.Get(ctx, client.ObjectKeyFromObject(job), owner)).To(gomega.Succeed())
		forged := restrictedPod(ns, "forged-owner", 8)
		forged.Spec.NodeName = "gpu-h100-3"
		forged.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}}
		err := f.Client.Create(ctx, forged)
		g.Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(gomega.BeTrue(), "got %v", err)
		g.Expect(err.Error()).To(gomega.ContainSubstring("must be admitted by Kueue"))
	})

	// The first Pod ends: its GPU-seconds are booked to the tenant's budget, and the next workload is admitted.
	if err := f.Client.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	framework.EventuallyWithin(t, long, func(g gomega.Gomega) {
		tq := &aifv1.TenantQuota{}
		g.Expect(f.Client.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		g.Expect(tq.Status.Budget).NotTo(gomega.BeNil())
		g.Expect(tq.Status.Budget.UsedGPUSeconds).To(gomega.BeNumerically(">", 0), "the plain Pod's GPU time is in the budget")
		g.Expect(tq.Status.AdmittedGPUs).To(gomega.Equal(int32(8)), "the next workload holds the quota")
	})
}
