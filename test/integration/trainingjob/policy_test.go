package trainingjob

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/podpolicy"
	"github.com/aifactory-eu/aifactory-operator/controllers/trainingjob"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// rdmaNS belongs to a tenant whose platform team granted IPC_LOCK for RDMA over InfiniBand, which only the
// privileged Pod Security level passes.
const rdmaNS = "tj-rdma"

// tweak returns a TrainingJob in ns whose worker template was changed by edit.
func tweak(namespace, name string, edit func(tj *aifv1.TrainingJob, s *corev1.PodSpec)) *aifv1.TrainingJob {
	tj := builders.TrainingJob(namespace, name).Obj()
	edit(tj, &tj.Spec.Template.Spec)
	return tj
}

func trainer(s *corev1.PodSpec) *corev1.Container { return &s.Containers[0] }

func securityContext(c *corev1.Container) *corev1.SecurityContext {
	if c.SecurityContext == nil {
		c.SecurityContext = &corev1.SecurityContext{}
	}
	return c.SecurityContext
}

func gpus(n string) corev1.ResourceList {
	return corev1.ResourceList{"nvidia.com/gpu": resource.MustParse(n)}
}

// The attack table: what a tenant engineer with admin rights in its namespace would write to escape its quota,
// its node or its identity. Each is refused by the API server (schema or the operator's webhook, registered by
// URL), with the offending field in the message. The requests are dry runs: admission runs in full and nothing
// is stored.
func TestPodPolicyRefusesEscapes(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		field string
		edit  func(tj *aifv1.TrainingJob, s *corev1.PodSpec)
	}{
		{"host network", "spec.template.spec.hostNetwork", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) { s.HostNetwork = true }},
		{"host PID", "spec.template.spec.hostPID", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) { s.HostPID = true }},
		{"host IPC", "spec.template.spec.hostIPC", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) { s.HostIPC = true }},
		{"privileged", "spec.template.spec.containers[0].securityContext.privileged", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			securityContext(trainer(s)).Privileged = ptr.To(true)
		}},
		{"privilege escalation", "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			securityContext(trainer(s)).AllowPrivilegeEscalation = ptr.To(true)
		}},
		{"SYS_ADMIN", "spec.template.spec.containers[0].securityContext.capabilities.add[0]", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			securityContext(trainer(s)).Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}, Drop: []corev1.Capability{"ALL"}}
		}},
		{"IPC_LOCK without the tenant's grant", "spec.template.spec.containers[0].securityContext.capabilities.add[0]", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			securityContext(trainer(s)).Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"IPC_LOCK"}}
		}},
		{"capabilities kept", "spec.template.spec.containers[0].securityContext.capabilities.drop", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			securityContext(trainer(s)).Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"NET_RAW"}}
		}},
		{"root container", "spec.template.spec.containers[0].securityContext.runAsUser", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			securityContext(trainer(s)).RunAsUser = ptr.To[int64](0)
		}},
		{"root pod", "spec.template.spec.securityContext.runAsUser", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0)}
		}},
		{"runAsNonRoot false", "spec.template.spec.securityContext.runAsNonRoot", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(false)}
		}},
		{"seccomp unconfined", "spec.template.spec.containers[0].securityContext.seccompProfile.type", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			securityContext(trainer(s)).SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		}},
		{"AppArmor unconfined", "spec.template.spec.securityContext.appArmorProfile.type", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.SecurityContext = &corev1.PodSecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}}
		}},
		{"host port", "spec.template.spec.containers[0].ports[0].hostPort", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			trainer(s).Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080}}
		}},
		{"hostPath /", "spec.template.spec.volumes[0].hostPath", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		}},
		{"another claim", "spec.template.spec.volumes[0].persistentVolumeClaim", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "other-tenant"}}}}
		}},
		{"NFS", "spec.template.spec.volumes[0].nfs", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "127.0.0.1", Path: "/"}}}}
		}},
		{"inline CSI", "spec.template.spec.volumes[0].csi", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "lustre", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "lustre.csi.hpe.com"}}}}
		}},
		{"a volume in the operator's names", "spec.template.spec.volumes[0].name", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "dataset-xray", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}},
		{"a second, writable mount of a dataset", "spec.template.spec.containers[0].volumeMounts[0].name", func(tj *aifv1.TrainingJob, s *corev1.PodSpec) {
			tj.Spec.Datasets = []aifv1.DatasetRef{{Name: "xray", MountPath: "/data"}}
			trainer(s).VolumeMounts = []corev1.VolumeMount{{Name: "dataset-xray", MountPath: "/rw"}}
		}},
		{"a mount over a dataset", "spec.template.spec.containers[0].volumeMounts[0].mountPath", func(tj *aifv1.TrainingJob, s *corev1.PodSpec) {
			tj.Spec.Datasets = []aifv1.DatasetRef{{Name: "xray", MountPath: "/data"}}
			s.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			trainer(s).VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/data"}}
		}},
		{"ephemeral volume of a class not granted", "spec.template.spec.volumes[0].ephemeral.volumeClaimTemplate.spec.storageClassName", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{ephemeral("scratch", "premium-ssd")}
		}},
		{"bidirectional mount propagation", "spec.template.spec.containers[0].volumeMounts[0].mountPropagation", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			trainer(s).VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch", MountPropagation: ptr.To(corev1.MountPropagationBidirectional)}}
		}},
		{"node name", "spec.template.spec.nodeName", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) { s.NodeName = "gpu-h100-0" }},
		{"pod priority class", "spec.template.spec.priorityClassName", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.PriorityClassName = "system-node-critical"
		}},
		{"another scheduler", "spec.template.spec.schedulerName", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) { s.SchedulerName = "my-scheduler" }},
		{"a foreign toleration", "spec.template.spec.tolerations[0]", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "hospital", Effect: corev1.TaintEffectNoSchedule}}
		}},
		{"tolerate every taint", "spec.template.spec.tolerations[0]", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		}},
		{"a GPU label against the pinned class", "spec.template.spec.nodeSelector[nvidia.com/gpu.product]", func(tj *aifv1.TrainingJob, s *corev1.PodSpec) {
			tj.Spec.GPUClass = builders.GPUClassH100
			s.NodeSelector = map[string]string{"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
		}},
		{"nodes by name", "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"gpu-h100-0"}}}}}}}}
		}},
		{"GPU label affinity", "spec.template.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].key", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 1,
				Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "nvidia.com/gpu.product", Operator: corev1.NodeSelectorOpExists}}}}}}}
		}},
		{"another service account", "spec.template.spec.serviceAccountName", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) { s.ServiceAccountName = "kueue-controller-manager" }},
		{"a GPU in a sidecar", "spec.template.spec.initContainers[0].resources.requests[nvidia.com/gpu]", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{{Name: "miner", Image: builders.TrainerImage, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				Resources: corev1.ResourceRequirements{Requests: gpus("8"), Limits: gpus("8")}}}
		}},
		{"a GPU in a second container", "spec.template.spec.containers[1].resources.limits[nvidia.com/gpu]", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Containers = append(s.Containers, corev1.Container{Name: "extra", Image: builders.TrainerImage, Resources: corev1.ResourceRequirements{Limits: gpus("4")}})
		}},
		{"MIG slices beside the run's GPUs", "spec.template.spec.containers[0].resources.requests[nvidia.com/mig-1g.10gb]", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			q := corev1.ResourceList{"nvidia.com/mig-1g.10gb": resource.MustParse("7")}
			trainer(s).Resources = corev1.ResourceRequirements{Requests: q, Limits: q}
		}},
		{"dynamic resource claims", "spec.template.spec.resourceClaims", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimName: ptr.To("any-gpu")}}
		}},
		{"pod priority", "spec.template.spec.priority", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) { s.Priority = ptr.To[int32](2000000000) }},
		{"a worker that never stops", "spec.template.spec.terminationGracePeriodSeconds", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.TerminationGracePeriodSeconds = ptr.To[int64](86400)
		}},
		{"a runtime class not granted", "spec.template.spec.runtimeClassName", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) { s.RuntimeClassName = ptr.To("kata-gpu") }},
		{"GPUs through the NVIDIA runtime's variable", "spec.template.spec.initContainers[0].env[0].name", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{{Name: "peek", Image: builders.TrainerImage, Env: []corev1.EnvVar{{Name: "NVIDIA_VISIBLE_DEVICES", Value: "all"}}}}
		}},
		{"a Kueue label on the workers", "spec.template.metadata.labels[kueue.x-k8s.io/queue-name]", func(tj *aifv1.TrainingJob, _ *corev1.PodSpec) {
			tj.Spec.Template.Labels = map[string]string{"kueue.x-k8s.io/queue-name": "other"}
		}},
		{"another tenant's network", "spec.template.metadata.annotations[k8s.v1.cni.cncf.io/networks]", func(tj *aifv1.TrainingJob, _ *corev1.PodSpec) {
			tj.Spec.Template.Annotations = map[string]string{"k8s.v1.cni.cncf.io/networks": "hospital/ib-net"}
		}},
		{"staying on an unreachable node forever", "spec.template.spec.tolerations[0].tolerationSeconds", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
		}},
		// The schema: names that the run's Service, Job and volumes could not carry.
		{"a name that is no Service name", "metadata.name", func(tj *aifv1.TrainingJob, _ *corev1.PodSpec) { tj.Name = "run.v2" }},
		{"a name starting with a digit", "metadata.name", func(tj *aifv1.TrainingJob, _ *corev1.PodSpec) { tj.Name = "2run" }},
		{"a dataset reference with a dot", "spec.datasets[0].name", func(tj *aifv1.TrainingJob, _ *corev1.PodSpec) {
			tj.Spec.Datasets = []aifv1.DatasetRef{{Name: "xray.v3", MountPath: "/data"}}
		}},
		{"a checkpoint reference with a dot", "spec.checkpoint.datasetMount", func(tj *aifv1.TrainingJob, _ *corev1.PodSpec) {
			tj.Spec.Checkpoint = &aifv1.CheckpointRef{DatasetMount: "ckpt.v1", MountPath: "/ckpt"}
		}},
	}
	if len(cases) < 30 {
		t.Fatalf("the attack table has %d cases, fewer than the 30 it is meant to cover", len(cases))
	}
	// The tenant at the privileged Pod Security level, granted IPC_LOCK: the rest of the policy still holds, and
	// its pods must still pass baseline but for the granted capability.
	privileged := []struct {
		name  string
		field string
		edit  func(tj *aifv1.TrainingJob, s *corev1.PodSpec)
	}{
		{"an unconfined SELinux type at the privileged level", "spec.template", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.SecurityContext = &corev1.PodSecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t"}}
		}},
		{"SYS_ADMIN beside the granted IPC_LOCK", "spec.template.spec.containers[0].securityContext.capabilities.add[1]", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			securityContext(trainer(s)).Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"IPC_LOCK", "SYS_ADMIN"}}
		}},
	}
	for i, tc := range privileged {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Create(ctx, tweak(rdmaNS, fmt.Sprintf("attack-rdma-%d", i), tc.edit), client.DryRunAll)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("want an Invalid refusal naming %s, got %v", tc.field, err)
			}
		})
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tj := tweak(ns, fmt.Sprintf("attack-%d", i), tc.edit)
			err := c.Create(ctx, tj, client.DryRunAll)
			if err == nil {
				t.Fatalf("accepted")
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid refusal, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("the refusal does not name %s: %v", tc.field, err)
			}
		})
	}
}

func ephemeral(name, class string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
		VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: ptr.To(class),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("100Gi")}},
		}},
	}}}
}

// What training needs must still pass: a memory-backed /dev/shm for NCCL, a configMap of hyperparameters, a
// capability the platform granted the tenant, a pinned class with its own tolerations and labels, a service
// account and a storage class the configuration allows, and a token the template asks for.
func TestPodPolicyKeepsWhatTrainingNeeds(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		ns   string
		edit func(tj *aifv1.TrainingJob, s *corev1.PodSpec)
	}{
		{"memory /dev/shm", ns, func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "shm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}}
			trainer(s).VolumeMounts = []corev1.VolumeMount{{Name: "shm", MountPath: "/dev/shm"}}
		}},
		{"hyperparameters", ns, func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "hparams", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "hparams"}}}}}
			trainer(s).VolumeMounts = []corev1.VolumeMount{{Name: "hparams", MountPath: "/etc/hparams", ReadOnly: true}}
		}},
		{"NET_BIND_SERVICE, which restricted allows", ns, func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			securityContext(trainer(s)).Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}, Drop: []corev1.Capability{"ALL"}}
		}},
		{"IPC_LOCK granted to the tenant for RDMA", rdmaNS, func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			securityContext(trainer(s)).Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"IPC_LOCK"}}
		}},
		{"a pinned class with its tolerations and labels", ns, func(tj *aifv1.TrainingJob, s *corev1.PodSpec) {
			tj.Spec.GPUClass = builders.GPUClassH100
			s.Tolerations = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
			s.NodeSelector = map[string]string{"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "topology.kubernetes.io/zone": "hall-a"}
		}},
		{"the class's toleration without a pinned class", ns, func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		}},
		{"an allowed service account with its token", ns, func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.ServiceAccountName, s.AutomountServiceAccountToken = "trainer", ptr.To(true)
		}},
		{"node-local scratch of an allowed class", ns, func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{ephemeral("scratch", "local-scratch")}
			trainer(s).VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
		}},
		{"explicit restricted settings and CPU and memory", ns, func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
			s.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
			sc := securityContext(trainer(s))
			sc.AllowPrivilegeEscalation, sc.Capabilities = ptr.To(false), &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
			trainer(s).Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("512Gi")}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tj := tweak(tc.ns, fmt.Sprintf("fine-%d", i), tc.edit)
			if err := c.Create(ctx, tj, client.DryRunAll); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

// A run admitted before a policy change can still be followed and deleted: updates that leave the spec alone
// pass the webhook, and one that changes the spec is judged by the policy in force.
func TestPodPolicyJudgesSpecChangesOnly(t *testing.T) {
	ctx := context.Background()
	tj := builders.TrainingJob(ns, "policy-update").Suspend(true).Obj()
	if err := c.Create(ctx, tj); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, tj) })
	framework.Eventually(t, func(g gomega.Gomega) {
		got := trainingJob(g, tj.Name)
		if got.Labels == nil {
			got.Labels = map[string]string{}
		}
		got.Labels["team"] = "vision"
		g.Expect(c.Update(ctx, got)).To(gomega.Succeed())
	})
	framework.Eventually(t, func(g gomega.Gomega) {
		got := trainingJob(g, tj.Name)
		got.Spec.Template.Spec.HostPID = true
		err := c.Update(ctx, got)
		g.Expect(apierrors.IsInvalid(err)).To(gomega.BeTrue(), "got %v", err)
		g.Expect(err.Error()).To(gomega.ContainSubstring("spec.template.spec.hostPID"))
	})
}

// Tenant namespaces carry the tenant label and Pod Security at the tenant's level, set again when someone
// removes them; a privileged Pod created directly in one is refused by the API server's Pod Security admission.
func TestTenantNamespacesEnforcePodSecurity(t *testing.T) {
	ctx := context.Background()
	framework.Eventually(t, func(g gomega.Gomega) {
		for n, level := range map[string]string{ns: "restricted", rdmaNS: "privileged"} {
			got := &corev1.Namespace{}
			g.Expect(c.Get(ctx, client.ObjectKey{Name: n}, got)).To(gomega.Succeed())
			g.Expect(got.Labels).To(gomega.HaveKeyWithValue(podpolicy.EnforceLabel, level), n)
			g.Expect(got.Labels).To(gomega.HaveKeyWithValue(aifv1.TenantLabel, n), n)
		}
	})
	framework.Eventually(t, func(g gomega.Gomega) {
		got := &corev1.Namespace{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: ns}, got)).To(gomega.Succeed())
		got.Labels[podpolicy.EnforceLabel] = "privileged"
		g.Expect(c.Update(ctx, got)).To(gomega.Succeed())
	})
	framework.Eventually(t, func(g gomega.Gomega) {
		got := &corev1.Namespace{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: ns}, got)).To(gomega.Succeed())
		g.Expect(got.Labels).To(gomega.HaveKeyWithValue(podpolicy.EnforceLabel, "restricted"), "the operator sets the level again")
	})
	// This suite runs Kueue without its webhooks, so nothing gates a plain GPU Pod: the operator's dry-run probe
	// finds that out and says so on the tenant, instead of the tenant running unprotected in silence.
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := &aifv1.TenantQuota{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		iso := apimeta.FindStatusCondition(tq.Status.Conditions, aifv1.ConditionIsolated)
		g.Expect(iso).NotTo(gomega.BeNil())
		g.Expect(iso.Status).To(gomega.Equal(metav1.ConditionFalse))
		g.Expect(iso.Reason).To(gomega.Equal(aifv1.ReasonPodsNotGated))
		g.Expect(iso.Message).To(gomega.ContainSubstring("namespace " + ns + ": a GPU Pod without a queue would not be gated by Kueue"))
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "root-shell"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "sh", Image: builders.TrainerImage, SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
	}}}}
	framework.Eventually(t, func(g gomega.Gomega) {
		err := c.Create(ctx, pod.DeepCopy(), client.DryRunAll)
		g.Expect(apierrors.IsForbidden(err)).To(gomega.BeTrue(), "got %v", err)
		g.Expect(err.Error()).To(gomega.ContainSubstring(`violates PodSecurity "restricted:latest"`))
	})
}

// Every Job the operator builds for a run that passed admission also passes Pod Security at the tenant's level,
// as the namespace will judge its pods.
func TestBuiltJobsPassPodSecurity(t *testing.T) {
	ctx := context.Background()
	const psaNS = "tj-psa" // its own tenant, so that the Job's workload holds no other test's quota
	if err := env.CreateNamespaces(ctx, psaNS); err != nil {
		t.Fatal(err)
	}
	tq := builders.TenantQuota(psaNS).Namespaces(psaNS).GPUs(builders.GPUClassH100, 16).Obj()
	if err := c.Create(ctx, tq); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, tq) })
	tj := tweak(psaNS, "psa-check", func(_ *aifv1.TrainingJob, s *corev1.PodSpec) {
		s.Volumes = []corev1.Volume{{Name: "shm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}}
		trainer(s).VolumeMounts = []corev1.VolumeMount{{Name: "shm", MountPath: "/dev/shm"}}
	})
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(c.Create(ctx, tj)).To(gomega.Succeed()) }) // once the webhook sees the tenant
	t.Cleanup(func() { _ = c.Delete(ctx, tj) })
	job := &batchv1.Job{}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: psaNS, Name: trainingjob.JobName(tj, 0)}, job)).To(gomega.Succeed())
		ns := &corev1.Namespace{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: psaNS}, ns)).To(gomega.Succeed())
		g.Expect(ns.Labels).To(gomega.HaveKeyWithValue(podpolicy.EnforceLabel, "restricted"))
	})
	// The Job's pod template, created as a Pod (dry run) in the restricted namespace: the API server's own Pod
	// Security admission passes it.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: psaNS, Name: "as-built", Labels: job.Spec.Template.Labels}, Spec: job.Spec.Template.Spec}
	if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
		t.Fatalf("the Job's pod is refused: %v", err)
	}
}

// When the API server refuses a child the operator writes, the run says so: Pending and Stalled with the API
// server's message, and an event, instead of waiting in silence. Here a ResourceQuota allows no Job in the
// namespace (a refusal no webhook can foresee); once it is lifted, the retried write succeeds.
func TestRefusedChildMakesTheRunStalled(t *testing.T) {
	ctx := context.Background()
	const quotaNS = "tj-quota"
	if err := env.CreateNamespaces(ctx, quotaNS); err != nil {
		t.Fatal(err)
	}
	tq := builders.TenantQuota(quotaNS).Namespaces(quotaNS).GPUs(builders.GPUClassH100, 16).Obj()
	if err := c.Create(ctx, tq); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, tq) })
	rq := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: quotaNS, Name: "no-jobs"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}}}
	if err := c.Create(ctx, rq); err != nil {
		t.Fatal(err)
	}
	// envtest runs no resource quota controller: the test writes the status it would write (nothing used yet),
	// and the API server's quota admission then enforces the quota.
	rq.Status = corev1.ResourceQuotaStatus{Hard: rq.Spec.Hard, Used: corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}}
	if err := c.Status().Update(ctx, rq); err != nil {
		t.Fatal(err)
	}
	tj := builders.TrainingJob(quotaNS, "refused").Obj()
	if err := c.Create(ctx, tj); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		got := &aifv1.TrainingJob{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tj), got)).To(gomega.Succeed())
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhasePending))
		g.Expect(got.Status.Reason).To(gomega.Equal(aifv1.ReasonChildRefused))
		g.Expect(got.Status.Message).To(gomega.ContainSubstring("exceeded quota: no-jobs"))
		g.Expect(got.Status.Message).To(gomega.ContainSubstring("create Job "+quotaNS+"/"+trainingjob.JobName(tj, 0)+": "), "the status names the write")
		g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, aifv1.ConditionStalled)).To(gomega.BeTrue())
	})
	if err := c.Delete(ctx, rq); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		got := &aifv1.TrainingJob{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tj), got)).To(gomega.Succeed())
		g.Expect(got.Status.Reason).NotTo(gomega.Equal(aifv1.ReasonChildRefused))
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: quotaNS, Name: trainingjob.JobName(tj, 0)}, &batchv1.Job{})).To(gomega.Succeed())
	})
}

// A run may not ask for a longer bound than its tenant allows: the webhook refuses it, naming the field. Within
// the maximum, or without a maxRunDuration (the tenant's default applies), it is admitted.
func TestMaxRunDurationBeyondTheTenantsMaximumIsRefused(t *testing.T) {
	ctx := context.Background()
	const ns = "tj-bound-max"
	if err := env.CreateNamespaces(ctx, ns); err != nil {
		t.Fatal(err)
	}
	tq := builders.TenantQuota(ns).Namespaces(ns).GPUs(builders.GPUClassH100, 16).Budget(100, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj()
	tq.Spec.Budget.MaxRunDuration = &metav1.Duration{Duration: time.Hour}
	if err := c.Create(ctx, tq); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		err := c.Create(ctx, builders.TrainingJob(ns, "year").MaxRunDuration(8760*time.Hour).Obj(), client.DryRunAll)
		g.Expect(apierrors.IsInvalid(err)).To(gomega.BeTrue(), "want Invalid, got %v", err)
		g.Expect(err.Error()).To(gomega.ContainSubstring("spec.maxRunDuration"))
		g.Expect(err.Error()).To(gomega.ContainSubstring("exceeds the 1h0m0s that tenant tj-bound-max allows a run"))
	})
	for _, tj := range []*aifv1.TrainingJob{
		builders.TrainingJob(ns, "hour").MaxRunDuration(time.Hour).Obj(),
		builders.TrainingJob(ns, "default").Obj(),
	} {
		if err := c.Create(ctx, tj, client.DryRunAll); err != nil {
			t.Fatalf("%s: %v", tj.Name, err)
		}
	}
}
