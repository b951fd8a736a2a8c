// Package factory runs the local AI factory: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// kwok with simulated GPU nodes, the Kueue manager and the operator, all as processes on this machine that
// listen on 127.0.0.1 only. Webhooks are registered by URL on 127.0.0.1, simulated nodes advertise 127.0.0.1,
// and pods get addresses from a loopback range, so nothing dials another address.
//
// What the factory simulates, because these machines have neither: GPUs (kwok nodes that advertise the labels
// and capacity of the NVIDIA device plugin and GPU Feature Discovery) and the parallel filesystem (hostPath
// folders under the factory's state folder). Workers "run" for the time in their pod template's
// aifactory.eu/simulated-runtime annotation.
package factory

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aifactory-eu/aifactory-operator/controllers"
)

// DefaultBasePort is the first of the loopback ports the factory uses; see Ports.
const DefaultBasePort = 16400

// Options say where the factory keeps its state, which ports it uses, and where its binaries are.
type Options struct {
	// Dir is the state folder: certificates, etcd data, logs, PIDs, kubeconfig, the simulated filesystems.
	Dir string
	// BasePort is the first of 11 consecutive loopback ports.
	BasePort int
	// BinDir holds kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kwok and kueue
	// (hack/ensure-bins.sh).
	BinDir string
	// Manager is the operator's binary; it also runs the dataset verifier of the simulated nodes.
	Manager string
	// Self is the factory's own binary, started again in the background as the simulated dataset verifier.
	Self string
	// KueueDir is the Kueue module's folder (CRDs and webhook manifests).
	KueueDir string
	// RepoDir is the repository (CRDs, RBAC and webhook manifests of the operator).
	RepoDir string
	// Out receives progress lines.
	Out io.Writer
}

// Ports are the loopback ports of the components.
type Ports struct {
	EtcdClient, EtcdPeer, APIServer, ControllerManager, Scheduler, Kwok         int
	KueueWebhook, KueueHealth, OperatorWebhook, OperatorHealth, OperatorMetrics int
}

// PortsFrom lays the ports out from base.
func PortsFrom(base int) Ports {
	return Ports{
		EtcdClient: base, EtcdPeer: base + 1, APIServer: base + 2, ControllerManager: base + 3, Scheduler: base + 4, Kwok: base + 5,
		KueueWebhook: base + 6, KueueHealth: base + 7, OperatorWebhook: base + 8, OperatorHealth: base + 9, OperatorMetrics: base + 10,
	}
}

// Factory is a local AI factory, started or found running.
type Factory struct {
	Options
	Ports Ports
	pki   *pki
	// Kubeconfig is the cluster-admin kubeconfig file.
	Kubeconfig string
	// Config reaches the API server as cluster admin.
	Config *rest.Config
	// Client is a cluster-admin client.
	Client client.WithWatch
}

// New prepares a factory's folders and certificates; it starts nothing.
func New(o Options) (*Factory, error) {
	if o.BasePort == 0 {
		o.BasePort = DefaultBasePort
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	o.Dir = abs
	for _, d := range []string{"logs", "pids", "data"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	f := &Factory{Options: o, Ports: PortsFrom(o.BasePort), Kubeconfig: filepath.Join(o.Dir, "kubeconfig")}
	if f.pki, err = loadOrCreatePKI(filepath.Join(o.Dir, "pki")); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	for _, step := range []func() error{
		func() error {
			return f.pki.serving("apiserver", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
		},
		func() error { return f.pki.serving("kube-controller-manager") },
		func() error { return f.pki.serving("kube-scheduler") },
		func() error { return f.pki.serving("kueue-webhook") },
		func() error { return f.pki.serving("operator-webhook") },
		func() error { return f.pki.client("admin", "factory-admin", "system:masters") },
		func() error { return f.pki.client("operator", OperatorUser) },
		f.pki.serviceAccountKey,
		f.writeKubeconfigs,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if f.Config, err = clientcmd.BuildConfigFromFlags("", f.Kubeconfig); err != nil {
		return nil, err
	}
	f.Config.QPS, f.Config.Burst = 100, 200
	scheme := controllers.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if f.Client, err = client.NewWithWatch(f.Config, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	return f, nil
}

// OperatorUser is the user the operator runs as; it holds only the operator's generated RBAC.
const OperatorUser = "aifactory-operator"

func (f *Factory) writeKubeconfigs() error {
	for name, user := range map[string]string{"kubeconfig": "admin", "operator.kubeconfig": "operator"} {
		kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: aifactory-local
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority: %s
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: aifactory-local
  context: {cluster: aifactory-local, user: %s}
current-context: aifactory-local
`, f.Ports.APIServer, f.pki.path("ca.crt"), user, f.pki.path(user+".crt"), f.pki.path(user+".key"), user)
		if err := os.WriteFile(filepath.Join(f.Dir, name), []byte(kc), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (f *Factory) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(f.Out, format+"\n", args...)
}

// component is a process of the factory and how to start it.
type component struct {
	name string
	run  func(context.Context) error
}

// components are the factory's processes in start order; Down stops them the other way round.
func (f *Factory) components() []component {
	return []component{
		{"etcd", f.startEtcd},
		{"kube-apiserver", f.startAPIServer},
		{"kube-controller-manager", f.startControllerManager},
		{"kube-scheduler", f.startScheduler},
		{"kwok", f.startKwok},
		{"kueue", f.startKueue},
		{"operator", f.startOperator},
		{"verifier", f.startVerifier},
	}
}

// Up starts every component that does not run yet, and waits until each is ready. Components of an earlier
// run that still run are kept.
func (f *Factory) Up(ctx context.Context) error {
	t0 := time.Now()
	for _, s := range f.components() {
		if pid, ok := f.running(s.name); ok {
			f.logf("  %-24s already running (pid %d)", s.name, pid)
			continue
		}
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		f.logf("  %-24s ready after %.1fs", s.name, time.Since(t0).Seconds())
	}
	if err := f.ensureNodes(ctx); err != nil {
		return fmt.Errorf("GPU nodes: %w", err)
	}
	return nil
}

// Down stops every component by its recorded PID, the last started first. With wipe, it also removes the
// state folder.
func (f *Factory) Down(wipe bool) error {
	var firstErr error
	cs := f.components()
	for i := len(cs) - 1; i >= 0; i-- {
		if err := f.stop(cs[i].name); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if wipe && firstErr == nil {
		return os.RemoveAll(f.Dir)
	}
	return firstErr
}

// Running lists the components that run.
func (f *Factory) Running() []string {
	var out []string
	for _, c := range f.components() {
		if _, ok := f.running(c.name); ok {
			out = append(out, c.name)
		}
	}
	return out
}
