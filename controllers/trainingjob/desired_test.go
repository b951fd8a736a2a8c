package trainingjob

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

func env(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			out[e.Name] = "field:" + e.ValueFrom.FieldRef.FieldPath
			continue
		}
		out[e.Name] = e.Value
	}
	return out
}

func TestJob(t *testing.T) {
	h100 := &classes.Class{Name: "h100-80gb", Resource: "nvidia.com/gpu", NodeLabels: map[string]string{"nvidia.com/gpu.product": "H100"},
		Tolerations: []corev1.Toleration{configv1.DefaultGPUToleration()}}
	xray := Mount{Name: "xray", ClaimName: "dataset-xray", SubPath: "medai/xray", MountPath: "/data/xray", ReadOnly: true}
	ckpt := &Mount{Name: "ckpt", ClaimName: "dataset-ckpt", MountPath: "/ckpt"}
	index := "field:metadata.annotations['batch.kubernetes.io/job-completion-index']"

	cases := []struct {
		name  string
		tj    *aifv1.TrainingJob
		in    Input
		check func(t *testing.T, spec corev1.PodSpec, env map[string]string)
	}{{
		name: "four H100 nodes with a dataset and a checkpoint, second attempt",
		tj:   builders.TrainingJob("medai-dev", "xray-finetune").Shape(4, 8).GPUClass("h100-80gb").Priority("high").Dataset("xray", "/data/xray").Checkpoint("ckpt", "/ckpt").Obj(),
		in:   Input{Attempt: 1, Restarts: 1, Class: h100, Datasets: []Mount{xray}, Checkpoint: ckpt},
		check: func(t *testing.T, s corev1.PodSpec, e map[string]string) {
			want := map[string]string{
				"PET_NNODES": "4", "PET_NPROC_PER_NODE": "8", "PET_NODE_RANK": index,
				"PET_MASTER_ADDR": "xray-finetune-1-0.xray-finetune", "PET_MASTER_PORT": "29500",
				"WORLD_SIZE": "32", "NODE_RANK": index, "MASTER_ADDR": "xray-finetune-1-0.xray-finetune", "MASTER_PORT": "29500",
				"AIFACTORY_RESTART_COUNT": "1", "CHECKPOINT_DIR": "/ckpt",
			}
			if diff := cmp.Diff(want, e); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if s.NodeSelector["nvidia.com/gpu.product"] != "H100" || len(s.Tolerations) != 1 {
				t.Errorf("class placement: %v %v", s.NodeSelector, s.Tolerations)
			}
			c := s.Containers[0]
			if diff := cmp.Diff([]corev1.VolumeMount{
				{Name: "dataset-xray", MountPath: "/data/xray", SubPath: "medai/xray", ReadOnly: true},
				{Name: "dataset-ckpt", MountPath: "/ckpt"},
			}, c.VolumeMounts); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
			if !s.Volumes[0].PersistentVolumeClaim.ReadOnly || s.Volumes[1].PersistentVolumeClaim.ReadOnly {
				t.Errorf("datasets read-only, checkpoint read-write: %+v", s.Volumes)
			}
		},
	}, {
		name: "MIG slices, no class pinned, no data",
		tj:   builders.TrainingJob("medai-dev", "small").Shape(1, 2).GPUResource(builders.MIGResource).Obj(),
		in:   Input{},
		check: func(t *testing.T, s corev1.PodSpec, e map[string]string) {
			got := s.Containers[0].Resources
			if got.Requests[builders.MIGResource] != got.Limits[builders.MIGResource] || got.Limits.Name(builders.MIGResource, "").Value() != 2 {
				t.Errorf("MIG request and limit: %+v", got)
			}
			if s.NodeSelector != nil || len(s.Volumes) != 0 || e["CHECKPOINT_DIR"] != "" || e["WORLD_SIZE"] != "2" {
				t.Errorf("unexpected placement, volumes or env: %v %v %v", s.NodeSelector, s.Volumes, e)
			}
		},
	}, {
		name: "sixteen whole-GPU nodes, class left to Kueue, long name",
		tj:   builders.TrainingJob("medai-dev", strings.Repeat("pretrain-", 6)+"70b").Shape(16, 8).Obj(),
		in:   Input{},
		check: func(t *testing.T, s corev1.PodSpec, e map[string]string) {
			if e["WORLD_SIZE"] != "128" || e["PET_NNODES"] != "16" || e["AIFACTORY_RESTART_COUNT"] != "0" {
				t.Errorf("env: %v", e)
			}
			if master := e["MASTER_ADDR"]; !strings.HasSuffix(master, "-0-0."+s.Subdomain) || len(strings.Split(master, ".")[0]) > 63 {
				t.Errorf("master %q must be worker 0's host name in the Service's subdomain", master)
			}
			if s.NodeSelector != nil || s.Tolerations != nil {
				t.Errorf("an unpinned run leaves placement to Kueue's flavor: %v %v", s.NodeSelector, s.Tolerations)
			}
			if s.Containers[0].Resources.Limits.Name("nvidia.com/gpu", "").Value() != 8 {
				t.Errorf("GPUs per worker: %+v", s.Containers[0].Resources)
			}
		},
	}, {
		name: "two MIG nodes pinned to the MIG class",
		tj:   builders.TrainingJob("medai-dev", "mig").Shape(2, 7).GPUClass(builders.GPUClassMIG).GPUResource(builders.MIGResource).Obj(),
		in: Input{Class: &classes.Class{Name: builders.GPUClassMIG, Resource: builders.MIGResource,
			NodeLabels: map[string]string{"nvidia.com/mig.config": "all-1g.10gb"}, Tolerations: []corev1.Toleration{configv1.DefaultGPUToleration()}}},
		check: func(t *testing.T, s corev1.PodSpec, e map[string]string) {
			if s.NodeSelector["nvidia.com/mig.config"] != "all-1g.10gb" || len(s.Tolerations) != 1 || e["WORLD_SIZE"] != "14" {
				t.Errorf("placement %v %v, env %v", s.NodeSelector, s.Tolerations, e)
			}
			if _, whole := s.Containers[0].Resources.Limits["nvidia.com/gpu"]; whole || s.Containers[0].Resources.Limits.Name(builders.MIGResource, "").Value() != 7 {
				t.Errorf("MIG slices only: %+v", s.Containers[0].Resources)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job := Job(tc.tj, tc.in)
			if len(job.Name) > 52 || len(ServiceName(tc.tj)) > 63 {
				t.Errorf("names too long for host names: %q %q", job.Name, ServiceName(tc.tj))
			}
			if *job.Spec.Parallelism != tc.tj.Spec.Nodes || *job.Spec.Completions != tc.tj.Spec.Nodes || !*job.Spec.Suspend || *job.Spec.BackoffLimit != 0 {
				t.Errorf("job shape: %+v", job.Spec)
			}
			if job.Labels[QueueLabel] != "default" || job.Labels[aifv1.TrainingJobLabel] != tc.tj.Name {
				t.Errorf("labels: %v", job.Labels)
			}
			if tc.tj.Spec.PriorityClassName != "" && job.Labels[PriorityClassLabel] != tc.tj.Spec.PriorityClassName {
				t.Errorf("priority label: %v", job.Labels)
			}
			s := job.Spec.Template.Spec
			if s.Subdomain != ServiceName(tc.tj) || s.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("subdomain or restart policy: %q %q", s.Subdomain, s.RestartPolicy)
			}
			if !*s.SecurityContext.RunAsNonRoot || s.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
				*s.Containers[0].SecurityContext.AllowPrivilegeEscalation || s.Containers[0].SecurityContext.Capabilities.Drop[0] != "ALL" {
				t.Errorf("restricted defaults missing: %+v %+v", s.SecurityContext, s.Containers[0].SecurityContext)
			}
			tc.check(t, s, env(s.Containers[0]))
		})
	}
}

func TestJobKeepsWhatTheTemplateAsks(t *testing.T) {
	tj := builders.TrainingJob("medai-dev", "debug").Containers(corev1.Container{
		Name: "trainer", Image: "i",
		SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}}},
	}).Obj()
	tj.Spec.Template.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(false)}
	s := Job(tj, Input{}).Spec.Template.Spec
	if *s.SecurityContext.RunAsNonRoot || !*s.Containers[0].SecurityContext.AllowPrivilegeEscalation || s.Containers[0].SecurityContext.Capabilities.Add[0] != "SYS_PTRACE" {
		t.Fatalf("the template's explicit settings were overridden: %+v %+v", s.SecurityContext, s.Containers[0].SecurityContext)
	}
	if tj.Spec.Template.Spec.Containers[0].Env != nil {
		t.Fatal("the TrainingJob's own template was changed")
	}
}

func TestNames(t *testing.T) {
	tj := builders.TrainingJob("medai-dev", strings.Repeat("x", 253)).Obj()
	for _, attempt := range []int32{0, 100} {
		if n := JobName(tj, attempt); len(n)+len("-1023") > 63 {
			t.Errorf("job name %q leaves no room for the worker index in a host name", n)
		}
	}
	if len(ServiceName(tj)) > 63 || len(JobLabel(tj)) > 63 {
		t.Error("service name or label longer than a DNS label")
	}
	other := builders.TrainingJob("medai-dev", strings.Repeat("x", 252)+"y").Obj()
	if JobName(tj, 0) == JobName(other, 0) || ServiceName(tj) == ServiceName(other) {
		t.Error("long names must stay distinct")
	}
	svc := Service(builders.TrainingJob("medai-dev", "run").Obj())
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses || svc.Spec.Selector[aifv1.TrainingJobLabel] != "run" {
		t.Errorf("headless service: %+v", svc.Spec)
	}
}

func TestShapeIgnoresTheAttemptAndFollowsTheRun(t *testing.T) {
	tj := builders.TrainingJob("ns", "run").Shape(2, 8).Obj()
	first, later := Shape(tj, Input{}), Shape(tj, Input{Attempt: 3, Restarts: 2})
	if first != later {
		t.Errorf("the attempt changed the shape: %s, %s", first, later)
	}
	if got := Job(tj, Input{Attempt: 3}).Annotations[aifv1.ShapeAnnotation]; got != first {
		t.Errorf("Job annotation %q, want %q", got, first)
	}
	bigger := tj.DeepCopy()
	bigger.Spec.Nodes = 4
	moved := Shape(tj, Input{Datasets: []Mount{{Name: "x", ClaimName: "dataset-x", MountPath: "/data"}}})
	for name, s := range map[string]string{"nodes": Shape(bigger, Input{}), "datasets": moved} {
		if s == first {
			t.Errorf("a change of %s kept the shape", name)
		}
	}
}
