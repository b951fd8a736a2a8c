// Command factory runs the local AI factory: a simulated GPU cluster with Kueue and the operator on this
// machine, on loopback only. `make factory` builds it and runs `factory up`; `make factory-down` runs
// `factory down`.
//
//	factory up [--samples=all|none]   start what is not running; with samples, apply them and follow the runs
//	factory down [--wipe]             stop every component by its recorded PID; --wipe also deletes the state
//	factory status                    list the components that run
//	factory verifier                  (started by up) the simulated kubelet of dataset verification pods
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aifactory-eu/aifactory-operator/controllers"
	"github.com/aifactory-eu/aifactory-operator/internal/factory"
	"github.com/aifactory-eu/aifactory-operator/internal/gomod"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: factory up|down|status|verifier [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "up":
		err = up(ctx, args)
	case "down":
		err = down(args)
	case "status":
		err = status(args)
	case "verifier":
		err = verifier(ctx, args)
	default:
		err = fmt.Errorf("unknown command %q: want up, down, status or verifier", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "factory:", err)
		os.Exit(1)
	}
}

type common struct {
	dir, binDir, manager string
	basePort             int
}

func (c *common) bind(fs *flag.FlagSet) {
	home, _ := os.UserHomeDir()
	fs.StringVar(&c.dir, "dir", ".factory", "State folder: certificates, etcd data, logs, PIDs, kubeconfig, simulated filesystems.")
	fs.IntVar(&c.basePort, "base-port", factory.DefaultBasePort, "First of 11 loopback ports the components listen on.")
	fs.StringVar(&c.binDir, "bin-dir", envOr("AIFACTORY_BIN_DIR", filepath.Join(home, ".cache", "aifactory-operator", "bin")), "Folder of the binaries built by hack/ensure-bins.sh.")
	fs.StringVar(&c.manager, "manager", "", "The operator's binary (default: manager beside this binary).")
}

func (c *common) open() (*factory.Factory, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if c.manager == "" {
		c.manager = filepath.Join(filepath.Dir(self), "manager")
	}
	repo, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	return factory.New(factory.Options{
		Dir: c.dir, BasePort: c.basePort, BinDir: c.binDir, Manager: c.manager, Self: self, RepoDir: repo, Out: os.Stdout,
	})
}

// kueueDir is the folder of the Kueue module that go.mod pins, whose CRDs and webhook manifests up installs.
// It is downloaded if the module cache lacks it.
func kueueDir(ctx context.Context) (string, error) {
	d, err := gomod.Dir(ctx, ".", "sigs.k8s.io/kueue")
	if err != nil {
		return "", fmt.Errorf("locating the Kueue module (run from the repository): %w", err)
	}
	return d, nil
}

func up(ctx context.Context, args []string) error {
	var c common
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	c.bind(fs)
	samples := fs.String("samples", "all", "all: apply config/samples/factory and follow the runs; none: only start the factory.")
	follow := fs.Duration("follow", 5*time.Minute, "How long to follow the sample runs at most.")
	_ = fs.Parse(args)
	if *samples != "all" && *samples != "none" {
		return fmt.Errorf("--samples=%s: want all or none", *samples)
	}
	f, err := c.open()
	if err != nil {
		return err
	}
	if f.KueueDir, err = kueueDir(ctx); err != nil {
		return err
	}
	t0 := time.Now()
	say("Starting the local AI factory in %s (loopback ports %d-%d)\n", f.Dir, c.basePort, c.basePort+10)
	if err := f.Up(ctx); err != nil {
		return fmt.Errorf("%w\nstop what started with: make factory-down", err)
	}
	say("Factory up after %.1fs: %d H100 nodes x %d GPUs, 1 A100 node in %d MIG 1g.10gb slices, 1 CPU node\n",
		time.Since(t0).Seconds(), factory.H100Nodes, factory.GPUsPerH100Node, factory.MIGSlicesPerNode)
	if *samples == "all" {
		if err := f.WriteSampleData(); err != nil {
			return err
		}
		if err := f.ApplySamples(ctx, filepath.Join("config", "samples", "factory")); err != nil {
			return err
		}
		say("\nApplied config/samples/factory: tenants medai and gridlab, their datasets and six training runs.\n")
		say("Following the runs, a line each time one changes:\n")
		if err := f.Follow(ctx, os.Stdout, *follow); err != nil {
			return err
		}
		say("\nTenants:\n")
		if err := f.Tenants(ctx, os.Stdout); err != nil {
			return err
		}
	}
	say(`
The factory keeps running. Point kubectl at it:

  export KUBECONFIG=%s
  kubectl get trainingjobs,datasetmounts -A
  kubectl get tenantquotas

Stop it with: make factory-down    (make factory-down WIPE=1 also deletes %s)
`, f.Kubeconfig, f.Dir)
	return nil
}

func down(args []string) error {
	var c common
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	c.bind(fs)
	wipe := fs.Bool("wipe", false, "Also delete the state folder.")
	_ = fs.Parse(args)
	if _, err := os.Stat(c.dir); errors.Is(err, os.ErrNotExist) {
		say("No factory state in %s\n", c.dir)
		return nil
	}
	f, err := c.open()
	if err != nil {
		return err
	}
	running := f.Running()
	if err := f.Down(*wipe); err != nil {
		return err
	}
	say("Stopped %d components: %s\n", len(running), strings.Join(running, ", "))
	if *wipe {
		say("Deleted %s\n", f.Dir)
	}
	return nil
}

func status(args []string) error {
	var c common
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	c.bind(fs)
	_ = fs.Parse(args)
	f, err := c.open()
	if err != nil {
		return err
	}
	say("Running: %s\nexport KUBECONFIG=%s\n", strings.Join(f.Running(), ", "), f.Kubeconfig)
	return nil
}

func verifier(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verifier", flag.ExitOnError)
	manager := fs.String("manager", "", "The operator's binary.")
	_ = fs.Parse(args)
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		return err
	}
	v := &factory.Verifier{Client: c, Manager: *manager, Log: func(format string, args ...any) {
		say(time.Now().UTC().Format(time.RFC3339)+" "+format+"\n", args...)
	}}
	return v.Run(ctx)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// say writes progress for the person at the terminal.
func say(format string, args ...any) { _, _ = fmt.Fprintf(os.Stdout, format, args...) }
