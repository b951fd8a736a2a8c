package trainingjob

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

func policyClasses() map[string]classes.Class {
	return map[string]classes.Class{
		"h100-80gb":       {Name: "h100-80gb", Resource: "nvidia.com/gpu", NodeLabels: map[string]string{classes.ProductLabel: "H100"}, Tolerations: []corev1.Toleration{configv1.DefaultGPUToleration()}},
		"a100-mig-1g10gb": {Name: "a100-mig-1g10gb", Resource: "nvidia.com/mig-1g.10gb", NodeLabels: map[string]string{classes.ProductLabel: "A100"}, Tolerations: []corev1.Toleration{configv1.DefaultGPUToleration()}},
	}
}

func restrictedConfig() *configv1.Configuration {
	cfg := &configv1.Configuration{}
	configv1.SetDefaults(cfg)
	return cfg
}

// Every Job the operator builds from a template that passed the pod policy also passes Pod Security
// "restricted", judged by the same library the API server's Pod Security admission runs.
func TestBuiltJobsPassRestricted(t *testing.T) {
	known := policyClasses()
	cases := map[string]*aifv1.TrainingJob{
		"bare template": builders.TrainingJob("medai", "plain").Obj(),
		"pinned class, datasets and checkpoint": builders.TrainingJob("medai", "pinned").GPUClass("h100-80gb").Dataset("xray", "/data").
			Checkpoint("ckpt", "/ckpt").Obj(),
		"MIG slices": builders.TrainingJob("gridlab", "mig").GPUResource("nvidia.com/mig-1g.10gb").GPUClass("a100-mig-1g10gb").Shape(1, 7).Obj(),
		"capabilities added without drop": func() *aifv1.TrainingJob {
			tj := builders.TrainingJob("medai", "caps").Obj()
			tj.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}}}
			return tj
		}(),
		"shm and a sidecar": func() *aifv1.TrainingJob {
			tj := builders.TrainingJob("medai", "shm").Obj()
			s := &tj.Spec.Template.Spec
			s.Volumes = []corev1.Volume{{Name: "shm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}}
			s.InitContainers = []corev1.Container{{Name: "log-shipper", Image: "ship:1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
			return tj
		}(),
	}
	for name, tj := range cases {
		t.Run(name, func(t *testing.T) {
			if errs := ValidateTrainingJob(tj, nil, restrictedConfig(), known); len(errs) > 0 {
				t.Fatalf("the template is refused: %v", errs)
			}
			var class *classes.Class
			if c, ok := known[tj.Spec.GPUClass]; ok {
				class = &c
			}
			failed, err := PodSecurityOf(tj, class, aifv1.PodSecurityRestricted)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range failed {
				t.Errorf("fails %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
			}
			j := Job(tj, Input{})
			if a := j.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a {
				t.Errorf("the service account token is mounted without being asked for")
			}
		})
	}
}

// Pod Security is the backstop of the operator's own rules: what they do not name (here an unsafe sysctl) is
// still refused, at the template, with Pod Security's words.
func TestPodSecurityBackstop(t *testing.T) {
	tj := builders.TrainingJob("medai", "sysctl").Obj()
	tj.Spec.Template.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "kernel.msgmax", Value: "65536"}}}
	errs := ValidateTrainingJob(tj, nil, restrictedConfig(), policyClasses())
	if len(errs) != 1 || errs[0].Field != "spec.template" || !strings.Contains(errs[0].Detail, "forbidden sysctls") {
		t.Fatalf("got %v", errs)
	}
}

// The tenant's exceptions add to the configuration's, and its level replaces the configuration's.
func TestTenantExceptions(t *testing.T) {
	cfg := restrictedConfig()
	cfg.PodPolicy.ServiceAccounts = []string{"trainer"}
	tq := builders.TenantQuota("medai").Obj()
	tq.Spec.PodPolicy = &aifv1.TenantPodPolicy{PodSecurityLevel: aifv1.PodSecurityPrivileged, AllowedCapabilities: []string{"IPC_LOCK"}, ServiceAccounts: []string{"uploader"}}
	tj := builders.TrainingJob("medai", "rdma").Obj()
	s := &tj.Spec.Template.Spec
	s.ServiceAccountName = "uploader"
	s.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"IPC_LOCK"}}}
	s.Containers[0].Resources.Requests = corev1.ResourceList{"rdma/hca_shared_devices_a": resource.MustParse("1")}
	if errs := ValidateTrainingJob(tj, tq, cfg, policyClasses()); len(errs) > 0 {
		t.Fatalf("refused: %v", errs)
	}
	if errs := ValidateTrainingJob(tj, nil, cfg, policyClasses()); len(errs) != 2 {
		t.Fatalf("without the tenant's exceptions want 2 refusals (capability, service account), got %v", errs)
	}
}

func TestIsGPUResource(t *testing.T) {
	known := policyClasses()
	for name, want := range map[corev1.ResourceName]bool{
		"nvidia.com/gpu": true, "nvidia.com/gpu.shared": true, "nvidia.com/mig-3g.40gb": true, "amd.com/gpu": true,
		"gpu.intel.com/i915": true, "habana.ai/gaudi": true, "amd.com/cpx_nps4": true, "cpu": false, "memory": false, "rdma/hca_shared_devices_a": false, "nvidia.com/hostdev": false,
	} {
		if got := IsGPUResource(name, known); got != want {
			t.Errorf("%s: got %t, want %t", name, got, want)
		}
	}
}
