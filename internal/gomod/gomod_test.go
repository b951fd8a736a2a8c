package gomod

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// repoRoot is the repository's top folder, whose go.mod pins the Kueue version the operator builds on.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// emptyModuleCache points the go command at a new, empty module cache for this test, as on a fresh machine.
// -modcacherw leaves the extracted files writable so that the test's temporary folder can be removed.
func emptyModuleCache(t *testing.T) string {
	t.Helper()
	mc := t.TempDir()
	t.Setenv("GOMODCACHE", mc)
	t.Setenv("GOFLAGS", "-modcacherw")
	return mc
}

// The lookup that the Kueue build, the factory, the test framework and the e2e suite share works on a module
// cache that has never seen Kueue: it downloads the module (and only it) and returns its extracted folder.
func TestDirDownloadsIntoAnEmptyModuleCache(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed:", err)
	}
	mc := emptyModuleCache(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for _, dir := range []string{repoRoot(t), filepath.Join(repoRoot(t), "hack", "tools", "kueue")} {
		got, err := Dir(ctx, dir, "sigs.k8s.io/kueue")
		if err != nil {
			t.Fatalf("Dir in %s: %v", dir, err)
		}
		if want := filepath.Join(mc, "sigs.k8s.io", "kueue@v0.17.0"); got != want {
			t.Errorf("Dir in %s = %q, want %q", dir, got, want)
		}
		// What the callers read from it: Kueue's main package and its CRDs.
		for _, f := range []string{"cmd/kueue/main.go", "config/components/crd/bases/kueue.x-k8s.io_workloads.yaml"} {
			if _, err := os.Stat(filepath.Join(got, f)); err != nil {
				t.Errorf("module folder from %s lacks %s: %v", dir, f, err)
			}
		}
	}
	// Only the module asked for was extracted; the rest of the module graph was not downloaded.
	extracted, err := filepath.Glob(filepath.Join(mc, "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range extracted {
		if rel, _ := filepath.Rel(mc, e); rel != filepath.Join("sigs.k8s.io", "kueue@v0.17.0") && filepath.Dir(rel) != "cache" {
			t.Errorf("the lookup extracted %s as well", rel)
		}
	}
}

func TestDirErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Dir(ctx, repoRoot(t), "sigs.k8s.io/kueue@v0.17.0"); err == nil {
		t.Error("a path with a version was accepted")
	}
	if _, err := Dir(ctx, repoRoot(t), ""); err == nil {
		t.Error("an empty path was accepted")
	}
	emptyModuleCache(t)
	t.Setenv("GOPROXY", "off")
	if _, err := Dir(ctx, repoRoot(t), "example.com/not-required-by-go-mod"); err == nil {
		t.Error("a module that go.mod does not require was found")
	}
}
