// Package api tests the CRD schemas (validation markers and CEL rules) against a real kube-apiserver.
package api

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

const ns = "medai-dev"

var env *framework.Env

func TestMain(m *testing.M) {
	var err error
	env, err = framework.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := env.CreateNamespaces(context.Background(), ns, "medai-prod", "gridlab"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// rawTenantQuota is a valid TenantQuota as unstructured, for fields that typed objects cannot express
// (unknown fields, values of the wrong shape).
func rawTenantQuota(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "aifactory.eu/v1alpha1",
		"kind":       "TenantQuota",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"namespaces": []any{name},
			"gpus":       []any{map[string]any{"gpuClass": "h100-80gb", "nominal": int64(8)}},
		},
	}}
}

func TestInvalidObjectsAreRejectedOnCreate(t *testing.T) {
	tq := builders.TenantQuota
	dsm := func(path string) *builders.DatasetMountBuilder { return builders.DatasetMount(ns, "ds", path) }
	tj := func() *builders.TrainingJobBuilder { return builders.TrainingJob(ns, "run") }

	withoutNamespaces := tq("t-nons").Obj()
	withoutNamespaces.Spec.Namespaces = nil
	emptyNamespaces := tq("t-emptyns").Namespaces().Obj()
	emptyNamespaces.Spec.Namespaces = []string{}
	unknownField := rawTenantQuota("t-unknown")
	unknownField.Object["spec"].(map[string]any)["gpuz"] = "16"
	negativeWeight := tq("t-weight").Obj()
	negativeWeight.Spec.FairSharingWeight = ptr.To(resource.MustParse("-1"))
	duplicateClass := tq("t-dup").Obj()
	duplicateClass.Spec.GPUs = append(duplicateClass.Spec.GPUs, duplicateClass.Spec.GPUs[0])
	noClassification := dsm("/medai/x").Obj()
	noClassification.Spec.Classification = ""
	noContainers := tj().Obj()
	noContainers.Spec.Template.Spec.Containers = []corev1.Container{}
	unknownTJField := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "aifactory.eu/v1alpha1", "kind": "TrainingJob",
		"metadata": map[string]any{"name": "run-unknown", "namespace": ns},
		"spec": map[string]any{
			"nodes": int64(1), "gpus": int64(8),
			"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "t", "image": "i"}}}},
		},
	}}

	ipcLockRestricted := tq("t-ipc").Obj()
	ipcLockRestricted.Spec.PodPolicy = &aifv1.TenantPodPolicy{AllowedCapabilities: []string{"IPC_LOCK"}}
	sysAdminBaseline := tq("t-sysadmin").Obj()
	sysAdminBaseline.Spec.PodPolicy = &aifv1.TenantPodPolicy{PodSecurityLevel: aifv1.PodSecurityBaseline, AllowedCapabilities: []string{"CHOWN", "SYS_ADMIN"}}
	badLevel := tq("t-level").Obj()
	badLevel.Spec.PodPolicy = &aifv1.TenantPodPolicy{PodSecurityLevel: "open"}

	cases := []struct {
		name  string
		obj   client.Object
		field string // the field path the error must name
		why   string // a fragment of the reason
	}{
		// TenantQuota
		{"tenant without namespaces", withoutNamespaces, "spec.namespaces", "Required value"},
		{"tenant with an empty namespace list", emptyNamespaces, "spec.namespaces", "at least 1"},
		{"tenant namespace not a DNS label", tq("t-badns").Namespaces("MedAI_Dev").Obj(), "spec.namespaces[0]", "should match"},
		{"tenant without GPU classes", tq("t-nogpus").NoGPUs().Obj(), "spec.gpus", "Required value"},
		{"negative nominal", tq("t-neg").GPUs(builders.GPUClassH100, -1).Obj(), "spec.gpus[0].nominal", "greater than or equal to 0"},
		{"lendingLimit above nominal", tq("t-lend").Cohort("eu").GPUs(builders.GPUClassH100, 8).Limits(builders.GPUClassH100, nil, ptr.To[int32](9)).Obj(), "spec.gpus[0].lendingLimit", "must not exceed nominal"},
		{"borrowingLimit without cohort", tq("t-borrow").Limits(builders.GPUClassH100, ptr.To[int32](4), nil).Obj(), "spec.gpus", "need spec.cohort"},
		{"duplicate GPU class", duplicateClass, "spec.gpus[1]", "Duplicate value"},
		{"bad budget period", tq("t-period").Budget(10, "Fortnight", aifv1.ExhaustedHold).Obj(), "spec.budget.period", "Unsupported value"},
		{"bad onExhausted policy", tq("t-policy").Budget(10, aifv1.PeriodMonth, "Evict").Obj(), "spec.budget.onExhausted", "Unsupported value"},
		{"negative budget", tq("t-budget").Budget(-5, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj(), "spec.budget.gpuHours", "greater than or equal to 0"},
		{"relative storage root", tq("t-rel").Storage(builders.FilesystemData, "medai", aifv1.ReadOnly).Obj(), "spec.storage[0].path", "should match"},
		{"storage root with ..", tq("t-dotdot").Storage(builders.FilesystemData, "/medai/../other", aifv1.ReadOnly).Obj(), "spec.storage[0].path", "'..'"},
		{"storage root with trailing slash", tq("t-trail").Storage(builders.FilesystemData, "/medai/", aifv1.ReadOnly).Obj(), "spec.storage[0].path", "should match"},
		{"storage root percent-encoded", tq("t-pct").Storage(builders.FilesystemData, "/medai/%2e%2e/x", aifv1.ReadOnly).Obj(), "spec.storage[0].path", "should match"},
		{"bad storage access", tq("t-acc").Storage(builders.FilesystemData, "/medai", "Append").Obj(), "spec.storage[0].access", "Unsupported value"},
		{"unknown data classification", tq("t-class").Classifications("secret").Obj(), "spec.dataClassifications[0]", "Unsupported value"},
		{"tenant name not a DNS label", tq("med.ai").Namespaces("medai").Obj(), "metadata.name", "DNS label"},
		{"negative fair-sharing weight", negativeWeight, "spec.fairSharingWeight", "must not be negative"},
		{"unknown tenant field", unknownField, "spec.gpuz", "unknown field"},
		{"IPC_LOCK under restricted", ipcLockRestricted, "spec.podPolicy.allowedCapabilities", "only passes Pod Security at privileged"},
		{"SYS_ADMIN under baseline", sysAdminBaseline, "spec.podPolicy.allowedCapabilities", "needs a podSecurityLevel that allows it"},
		{"unknown Pod Security level", badLevel, "spec.podPolicy.podSecurityLevel", "Unsupported value"},
		// DatasetMount
		{"dataset without classification", noClassification, "spec.classification", "Unsupported value"},
		{"relative dataset path", dsm("medai/x").Obj(), "spec.path", "should match"},
		{"dataset path with ..", dsm("/medai/../gridlab/x").Obj(), "spec.path", "'..'"},
		{"dataset path with .", dsm("/medai/./x").Obj(), "spec.path", "'..'"},
		{"dataset path with //", dsm("//medai/x").Obj(), "spec.path", "should match"},
		{"dataset path with NUL", dsm("/medai/x\x00y").Obj(), "spec.path", "should match"},
		{"dataset path with newline", dsm("/medai/x\ny").Obj(), "spec.path", "should match"},
		{"bad dataset access", dsm("/medai/x").Access("Append").Obj(), "spec.access", "Unsupported value"},
		{"bad verification mode", dsm("/medai/x").Verification("Full").Obj(), "spec.verification", "Unsupported value"},
		{"bad filesystem name", dsm("/medai/x").Filesystem("Lustre_Datasets").Obj(), "spec.filesystem", "should match"},
		// TrainingJob
		{"zero nodes", tj().Shape(0, 8).Obj(), "spec.nodes", "greater than or equal to 1"},
		{"too many GPUs per node", tj().Shape(2, 65).Obj(), "spec.gpusPerNode", "less than or equal to 64"},
		{"core resource as GPU resource", tj().GPUResource("cpu").Obj(), "spec.gpuResource", "should match"},
		{"template without containers", noContainers, "spec.template.spec.containers", "at least one container"},
		{"relative dataset mountPath", tj().Dataset("ds", "data").Obj(), "spec.datasets[0].mountPath", "should match"},
		{"duplicate dataset mountPath", tj().Dataset("a", "/data").Dataset("b", "/data").Obj(), "spec.datasets", "mountPath must be unique"},
		{"checkpoint at /", tj().Checkpoint("ckpt", "/").Obj(), "spec.checkpoint.mountPath", "root folder"},
		{"negative maxRunDuration", tj().MaxRunDuration(-time.Hour).Obj(), "spec.maxRunDuration", "must be positive"},
		{"too many restarts", tj().MaxRestarts(101).Obj(), "spec.maxRestarts", "less than or equal to 100"},
		{"queue name not a DNS name", tj().Queue("Default_Q").Obj(), "spec.queueName", "should match"},
		{"GPU class not a DNS label", tj().GPUClass("H100").Obj(), "spec.gpuClass", "should match"},
		{"unknown training job field", unknownTJField, "spec.gpus", "unknown field"},
		{"training job name with a dot", builders.TrainingJob(ns, "run.v2").Obj(), "metadata.name", "DNS label"},
		{"dataset reference with a dot", tj().Dataset("xray.v3", "/data").Obj(), "spec.datasets[0].name", "should match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Client.Create(context.Background(), tc.obj)
			if err == nil {
				_ = env.Client.Delete(context.Background(), tc.obj)
				t.Fatalf("created, want a rejection naming %s", tc.field)
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("want Invalid or BadRequest, got %v", err)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("error does not name %q with %q:\n%v", tc.field, tc.why, err)
			}
		})
	}
}

func TestImmutableAndRunningFieldsAreRejectedOnUpdate(t *testing.T) {
	ctx := context.Background()
	c := env.Client

	ds := builders.DatasetMount(ns, "immutable", "/medai/a").Obj()
	mustCreate(t, ds)
	running := builders.TrainingJob(ns, "running").Obj()
	mustCreate(t, running)
	setPhase(t, running, aifv1.PhaseRunning)

	cases := []struct {
		name   string
		obj    client.Object
		mutate func(client.Object)
		field  string
	}{
		{"dataset filesystem", ds, func(o client.Object) { o.(*aifv1.DatasetMount).Spec.Filesystem = "other" }, "spec.filesystem"},
		{"dataset path", ds, func(o client.Object) { o.(*aifv1.DatasetMount).Spec.Path = "/medai/b" }, "spec.path"},
		{"dataset access", ds, func(o client.Object) { o.(*aifv1.DatasetMount).Spec.Access = aifv1.ReadWrite }, "spec.access"},
		{"nodes of a running job", running, func(o client.Object) { o.(*aifv1.TrainingJob).Spec.Nodes = 4 }, "spec.nodes"},
		{"GPUs per node of a running job", running, func(o client.Object) { o.(*aifv1.TrainingJob).Spec.GPUsPerNode = 4 }, "spec.gpusPerNode"},
		{"GPU class of a running job", running, func(o client.Object) { o.(*aifv1.TrainingJob).Spec.GPUClass = "a100" }, "spec.gpuClass"},
		{"GPU resource of a running job", running, func(o client.Object) { o.(*aifv1.TrainingJob).Spec.GPUResource = builders.MIGResource }, "spec.gpuResource"},
		{"image of a running job", running, func(o client.Object) {
			o.(*aifv1.TrainingJob).Spec.Template.Spec.Containers[0].Image = "other:2"
		}, "spec.template"},
		{"datasets of a running job", running, func(o client.Object) {
			o.(*aifv1.TrainingJob).Spec.Datasets = []aifv1.DatasetRef{{Name: "x", MountPath: "/x"}}
		}, "spec.datasets"},
		{"checkpoint of a running job", running, func(o client.Object) {
			o.(*aifv1.TrainingJob).Spec.Checkpoint = &aifv1.CheckpointRef{DatasetMount: "x", MountPath: "/ckpt"}
		}, "spec.checkpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.obj.DeepCopyObject().(client.Object)
			if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				t.Fatal(err)
			}
			tc.mutate(obj)
			err := c.Update(ctx, obj)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("want Invalid naming %s, got %v", tc.field, err)
			}
		})
	}

	t.Run("a running job may still be suspended", func(t *testing.T) {
		obj := &aifv1.TrainingJob{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(running), obj); err != nil {
			t.Fatal(err)
		}
		obj.Spec.Suspend = true
		if err := c.Update(ctx, obj); err != nil {
			t.Fatalf("suspending a running job: %v", err)
		}
	})
	t.Run("a queued job may change shape", func(t *testing.T) {
		queued := builders.TrainingJob(ns, "queued").Obj()
		mustCreate(t, queued)
		setPhase(t, queued, aifv1.PhaseQueued)
		queued.Spec.Nodes = 4
		queued.Spec.Template.Spec.Containers[0].Image = "other:2"
		if err := c.Update(ctx, queued); err != nil {
			t.Fatalf("changing a queued job: %v", err)
		}
	})
	t.Run("a dataset's version and verification may change", func(t *testing.T) {
		obj := &aifv1.DatasetMount{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(ds), obj); err != nil {
			t.Fatal(err)
		}
		obj.Spec.Version = "v2"
		obj.Spec.Verification = aifv1.VerificationContent
		if err := c.Update(ctx, obj); err != nil {
			t.Fatalf("changing version and verification: %v", err)
		}
	})
}

func TestDefaultsAreApplied(t *testing.T) {
	ctx := context.Background()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "aifactory.eu/v1alpha1", "kind": "TrainingJob",
		"metadata": map[string]any{"name": "defaults", "namespace": ns},
		"spec": map[string]any{
			"nodes":    int64(1),
			"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "t", "image": "i"}}}},
		},
	}}
	if err := env.Client.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	got := &aifv1.TrainingJob{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	if s.QueueName != "default" || s.GPUsPerNode != 8 || s.GPUResource != "nvidia.com/gpu" || s.MaxRestarts != 3 || s.Suspend {
		t.Fatalf("defaults not applied: %+v", s)
	}

	tqObj := builders.TenantQuota("defaults").Budget(100, "", "").Storage(builders.FilesystemData, "/d", "").Obj()
	if err := env.Client.Create(ctx, tqObj); err != nil {
		t.Fatal(err)
	}
	b, st := tqObj.Spec.Budget, tqObj.Spec.Storage[0]
	if b.Period != aifv1.PeriodMonth || b.OnExhausted != aifv1.ExhaustedHold || st.Access != aifv1.ReadOnly ||
		strings.Join(classes(tqObj.Spec.DataClassifications), ",") != "public,internal" {
		t.Fatalf("defaults not applied: budget %+v, storage %+v, classes %v", b, st, tqObj.Spec.DataClassifications)
	}
}

// The worker template's labels and annotations reach the API server intact: they are how users label their
// pods, and the factory's simulated runtime is an annotation.
func TestPodTemplateMetadataIsKept(t *testing.T) {
	tj := builders.TrainingJob(ns, "template-metadata").SimulatedRuntime(20*time.Second, true).Obj()
	tj.Spec.Template.Labels = map[string]string{"team": "radiology"}
	mustCreate(t, tj)
	got := &aifv1.TrainingJob{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(tj), got); err != nil {
		t.Fatal(err)
	}
	m := got.Spec.Template.ObjectMeta
	if m.Labels["team"] != "radiology" || m.Annotations[aifv1.SimulatedRuntimeAnnotation] != "20s" || m.Annotations[aifv1.SimulatedResultAnnotation] != "Failed" {
		t.Fatalf("template metadata was pruned: %+v", m)
	}
}

func TestSamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join(framework.RepoRoot(), "config", "samples", "aifactory_*.yaml"))
	if err != nil || len(files) != 3 {
		t.Fatalf("want the 3 sample files, got %v (%v)", files, err)
	}
	created := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				break
			}
			if len(u.Object) == 0 {
				continue
			}
			if err := env.Client.Create(ctx, u); err != nil {
				t.Errorf("%s: %s %s rejected: %v", filepath.Base(f), u.GetKind(), u.GetName(), err)
			}
			created++
		}
	}
	if created < 5 {
		t.Fatalf("created %d sample objects, want at least 5", created)
	}
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
}

// setPhase writes status.phase as the TrainingJob controller would.
func setPhase(t *testing.T, tj *aifv1.TrainingJob, phase aifv1.TrainingJobPhase) {
	t.Helper()
	tj.Status.Phase = phase
	tj.Status.Conditions = []metav1.Condition{{
		Type: aifv1.ConditionAccepted, Status: metav1.ConditionTrue, Reason: aifv1.ReasonAccepted,
		LastTransitionTime: metav1.Now(), ObservedGeneration: tj.Generation,
	}}
	if err := env.Client.Status().Update(context.Background(), tj); err != nil {
		t.Fatalf("setting phase %s: %v", phase, err)
	}
}

func classes(cs []aifv1.DataClassification) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}
