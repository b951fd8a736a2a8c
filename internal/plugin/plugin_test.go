package plugin

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// now is a little after the objects in test/testdata/objects were read from the local factory.
var now = time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)

const objects = "../../test/testdata/objects"

func load[T any](t *testing.T, file string) T {
	t.Helper()
	var obj T
	b, err := os.ReadFile(filepath.Join(objects, file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func tenants(t *testing.T) []aifv1.TenantQuota {
	var out []aifv1.TenantQuota
	for _, f := range []string{"tenantquota-ready.yaml", "tenantquota-budget-exhausted.yaml", "tenantquota-unknown-class.yaml", "tenantquota-no-cohort.yaml"} {
		out = append(out, load[aifv1.TenantQuota](t, f))
	}
	return out
}

func jobs(t *testing.T) []aifv1.TrainingJob {
	files, err := filepath.Glob(filepath.Join(objects, "trainingjob-*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []aifv1.TrainingJob
	for _, f := range files {
		out = append(out, load[aifv1.TrainingJob](t, filepath.Base(f)))
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil { //nolint:gosec // test data
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/plugin -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

func TestStatus(t *testing.T) {
	all, tqs := jobs(t), tenants(t)
	for _, ns := range []string{"medai", "gridlab", "prelab", "nowhere"} {
		var in []aifv1.TrainingJob
		for _, tj := range all {
			if tj.Namespace == ns {
				in = append(in, tj)
			}
		}
		var out bytes.Buffer
		Status(&out, ns, TenantOf(tqs, ns), in, now)
		golden(t, "status-"+ns, out.Bytes())
	}
}

func TestWhy(t *testing.T) {
	tqs := tenants(t)
	for _, tj := range jobs(t) {
		var out bytes.Buffer
		Why(&out, &tj, TenantOf(tqs, tj.Namespace), tqs)
		golden(t, "why-"+tj.Namespace+"-"+tj.Name, out.Bytes())
	}
}

func TestUsage(t *testing.T) {
	var out bytes.Buffer
	Usage(&out, tenants(t))
	golden(t, "usage", out.Bytes())
}

// The figures in why come from Kueue's own message.
func TestNeededMatchesKueuesMessage(t *testing.T) {
	m := needed.FindStringSubmatch("couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor h100-80gb, 16 more needed")
	if m == nil || m[1] != "nvidia.com/gpu" || m[2] != "h100-80gb" || m[3] != "16" {
		t.Fatalf("got %q", m)
	}
}
