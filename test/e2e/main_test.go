// Package e2e runs the operator end to end on the local AI factory: a real kube-apiserver, etcd,
// kube-controller-manager (Job controller, garbage collector), kube-scheduler, the stock Kueue manager with its
// webhooks, and the operator as its own process with only its generated RBAC. What is simulated, because these
// machines have neither: GPU nodes (kwok nodes with the NVIDIA device plugin's labels and capacity, whose
// workers run for their aifactory.eu/simulated-runtime) and the parallel filesystem (hostPath folders, whose
// verification pods the factory's verifier completes by running the operator's own walker on the folder).
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aifactory-eu/aifactory-operator/internal/factory"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// basePort keeps the test factory's ports apart from a factory started by `make factory`.
const basePort = 17400

var (
	f       *factory.Factory
	binDir  string
	kubectl string
)

func TestMain(m *testing.M) { os.Exit(setup(m)) }

func setup(m *testing.M) int {
	home, _ := os.UserHomeDir()
	binDir = os.Getenv("AIFACTORY_BIN_DIR")
	if binDir == "" {
		binDir = filepath.Join(home, ".cache", "aifactory-operator", "bin")
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "kueue"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			fmt.Fprintf(os.Stderr, "%s is not built: run the tests with `make unit` (it runs hack/ensure-bins.sh)\n", b)
			return 1
		}
	}
	kubectl = filepath.Join(binDir, "kubectl")
	dir, err := os.MkdirTemp("", "aifactory-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	root := framework.RepoRoot()
	bins := filepath.Join(dir, "bin")
	for name, pkg := range map[string]string{"manager": "./cmd/manager", "factory": "./hack/factory"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bins, name), pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", name, err)
			return 1
		}
	}
	kueueDir, err := framework.KueueDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f, err = factory.New(factory.Options{
		Dir: dir, BasePort: basePort, BinDir: binDir, Manager: filepath.Join(bins, "manager"), Self: filepath.Join(bins, "factory"),
		KueueDir: kueueDir, RepoDir: root, Out: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := f.Up(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "starting the factory:", err)
		_ = f.Down(false)
		fmt.Fprintln(os.Stderr, "logs kept in", filepath.Join(dir, "logs"))
		return 1
	}
	code := m.Run()
	if err := f.Down(code == 0); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the factory:", err)
		code = 1
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, "factory logs kept in", filepath.Join(dir, "logs"))
	}
	if left := f.Running(); len(left) > 0 {
		fmt.Fprintln(os.Stderr, "components still running after stop:", left)
		code = 1
	}
	return code
}
