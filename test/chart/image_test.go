package chart

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// The Dockerfile copies every folder the manager is built from, and builds it as this test does: a static binary
// (no interpreter, no shared libraries) that runs on a distroless base, controllers and dataset verifier alike.
// There is no container engine here, so the test builds the binary the image would hold.
func TestImageBinaryIsStatic(t *testing.T) {
	root := framework.RepoRoot()
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(dockerfile)
	build := regexp.MustCompile(`RUN (CGO_ENABLED=0 .*go build .* (\./cmd/manager))`).FindStringSubmatch(df)
	if build == nil || !strings.Contains(df, "FROM gcr.io/distroless/static:nonroot") || !strings.Contains(df, "USER 65532:65532") {
		t.Fatalf("the Dockerfile must build ./cmd/manager with CGO_ENABLED=0 onto distroless static nonroot")
	}
	list := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd/manager")
	list.Dir = root
	deps, err := list.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range strings.Fields(string(deps)) {
		top := strings.SplitN(strings.TrimPrefix(dir, root+string(filepath.Separator)), string(filepath.Separator), 2)[0]
		if !strings.Contains(df, "COPY "+top+"/ "+top+"/") {
			t.Errorf("the manager is built from %s/, which the Dockerfile does not copy", top)
		}
	}

	bin := filepath.Join(t.TempDir(), "manager")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/manager")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the manager binary needs a dynamic loader; distroless/static has none")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the manager binary links %v", libs)
	}
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "a.txt"), []byte("a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "verify-dataset", "--root="+data, "--mode=Content", "--termination-log=").Output()
	if err != nil || !strings.Contains(string(out), `"digest":"sha256:`) {
		t.Fatalf("the image's binary must verify datasets too: %v %s", err, out)
	}
}
