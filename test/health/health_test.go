// Package health checks how Argo CD and kstatus (Flux, kpt, cli-utils) judge the operator's objects: the Argo
// CD health scripts shipped in charts/aifactory-operator/argocd run in gopher-lua, the Lua interpreter Argo CD
// embeds, and kstatus computes its status, both on objects read from a real API server (test/testdata/objects).
package health

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"

	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

var (
	objects = filepath.Join(framework.RepoRoot(), "test", "testdata", "objects")
	scripts = filepath.Join(framework.RepoRoot(), "charts", "aifactory-operator", "argocd")
)

// expectations per object file: Argo CD health, a word its message must hold, and kstatus.
var cases = []struct {
	file    string
	argo    string
	message string
	kstatus status.Status
}{
	{"trainingjob-pending.yaml", "Progressing", "DatasetMount chest-xray-v4", status.InProgressStatus},
	{"trainingjob-queued.yaml", "Progressing", "insufficient unused quota", status.InProgressStatus},
	{"trainingjob-admitted.yaml", "Progressing", "WorkersStarting", status.InProgressStatus},
	{"trainingjob-running.yaml", "Progressing", "WorkersRunning", status.InProgressStatus},
	{"trainingjob-restarting.yaml", "Progressing", "restart 1 of 2", status.InProgressStatus},
	{"trainingjob-preempted.yaml", "Progressing", "Preempted", status.InProgressStatus},
	{"trainingjob-held-by-budget.yaml", "Progressing", "GPU-hours used", status.InProgressStatus},
	{"trainingjob-waiting-for-budget.yaml", "Progressing", "the budget check holds admission", status.InProgressStatus},
	{"trainingjob-suspended.yaml", "Suspended", "spec.suspend", status.CurrentStatus},
	{"trainingjob-succeeded.yaml", "Healthy", "Completed", status.CurrentStatus},
	{"trainingjob-failed-restarts.yaml", "Degraded", "RestartsExhausted", status.FailedStatus},
	{"tenantquota-ready.yaml", "Healthy", "admits work", status.CurrentStatus},
	{"tenantquota-budget-exhausted.yaml", "Degraded", "BudgetExhausted", status.CurrentStatus},
	{"tenantquota-unknown-class.yaml", "Degraded", "b200-192gb", status.FailedStatus},
	{"tenantquota-no-cohort.yaml", "Healthy", "admits work", status.CurrentStatus},
	{"datasetmount-verified.yaml", "Healthy", "bound", status.CurrentStatus},
	{"datasetmount-readwrite.yaml", "Healthy", "ReadWrite", status.CurrentStatus},
	{"datasetmount-verification-failed.yaml", "Degraded", "VerificationFailed", status.FailedStatus},
}

func load(t *testing.T, file string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(objects, file))
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestEveryObjectIsCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(objects, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.file] = true
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no expectation", filepath.Base(f))
		}
	}
	if len(cases) < 12 {
		t.Errorf("want at least 12 object states, have %d", len(cases))
	}
}

func TestArgoCDHealth(t *testing.T) {
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			u := load(t, c.file)
			got, msg := argoHealth(t, filepath.Join(scripts, strings.ToLower(u.GetKind())+".lua"), u.Object)
			if got != c.argo || !strings.Contains(msg, c.message) {
				t.Errorf("health %s (%q), want %s with %q", got, msg, c.argo, c.message)
			}
		})
	}
	t.Run("no status yet", func(t *testing.T) {
		for _, kind := range []string{"trainingjob", "tenantquota", "datasetmount"} {
			got, _ := argoHealth(t, filepath.Join(scripts, kind+".lua"), map[string]any{"metadata": map[string]any{"name": "new", "generation": int64(1)}})
			if got != "Progressing" {
				t.Errorf("%s without status: %s", kind, got)
			}
		}
	})
	t.Run("status of an older generation", func(t *testing.T) {
		u := load(t, "trainingjob-succeeded.yaml")
		u.SetGeneration(u.GetGeneration() + 1)
		if got, msg := argoHealth(t, filepath.Join(scripts, "trainingjob.lua"), u.Object); got != "Progressing" {
			t.Errorf("a status older than the spec: %s (%s)", got, msg)
		}
	})
}

func TestKstatus(t *testing.T) {
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			res, err := status.Compute(load(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != c.kstatus {
				t.Errorf("kstatus %s (%s), want %s", res.Status, res.Message, c.kstatus)
			}
		})
	}
}

// argoHealth runs a health script the way Argo CD does: the object as the global obj, the returned table's
// status and message as the result.
func argoHealth(t *testing.T, script string, obj map[string]any) (string, string) {
	t.Helper()
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: false})
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	fn, err := L.LoadString(string(src))
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	L.Push(fn)
	if err := L.PCall(0, 1, nil); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("%s returned %s, want a table", script, L.Get(-1).Type())
	}
	return lua.LVAsString(hs.RawGetString("status")), lua.LVAsString(hs.RawGetString("message"))
}

// toLua converts decoded JSON to Lua values as Argo CD does: objects to tables, arrays to 1-based tables.
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range x {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(x)
	case bool:
		return lua.LBool(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case nil:
		return lua.LNil
	}
	return lua.LString("")
}

// The argocd-cm snippet that platform teams copy carries the same scripts as the tested .lua files.
func TestArgoCDConfigMapMatchesTheScripts(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(scripts, "argocd-cm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"TrainingJob", "TenantQuota", "DatasetMount"} {
		src, err := os.ReadFile(filepath.Join(scripts, strings.ToLower(kind)+".lua"))
		if err != nil {
			t.Fatal(err)
		}
		if got := cm.Data["resource.customizations.health.aifactory.eu_"+kind]; got != string(src) {
			t.Errorf("argocd-cm.yaml's script for %s differs from %s.lua", kind, strings.ToLower(kind))
		}
	}
}
