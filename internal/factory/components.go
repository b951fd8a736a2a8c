package factory

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

//go:embed stages.yaml
var kwokStages []byte

func (f *Factory) bin(name string) string { return filepath.Join(f.BinDir, name) }

func (f *Factory) startEtcd(ctx context.Context) error {
	p := f.Ports
	err := f.start("etcd", f.bin("etcd"), []string{
		"--name=aifactory", "--data-dir=" + filepath.Join(f.Dir, "etcd"),
		fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", p.EtcdClient),
		fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", p.EtcdClient),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", p.EtcdPeer),
		fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", p.EtcdPeer),
		fmt.Sprintf("--initial-cluster=aifactory=http://127.0.0.1:%d", p.EtcdPeer),
		"--listen-metrics-urls=", "--unsafe-no-fsync=true", "--quota-backend-bytes=4294967296", "--log-level=warn",
	})
	if err != nil {
		return err
	}
	return f.waitHTTP(ctx, "etcd", fmt.Sprintf("http://127.0.0.1:%d/health", p.EtcdClient), 30*time.Second)
}

func (f *Factory) startAPIServer(ctx context.Context) error {
	p, k := f.Ports, f.pki.path
	err := f.start("kube-apiserver", f.bin("kube-apiserver"), []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", p.EtcdClient),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", p.APIServer),
		"--tls-cert-file=" + k("apiserver.crt"), "--tls-private-key-file=" + k("apiserver.key"), "--client-ca-file=" + k("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + k("sa.pub"), "--service-account-signing-key-file=" + k("sa.key"),
		// Services get addresses from this range, and nothing here dials them.
		"--service-cluster-ip-range=10.96.0.0/24",
		"--authorization-mode=Node,RBAC", "--enable-priority-and-fairness=false",
		// As real clusters run it: device plugins and CNI need privileged pods, so Pod Security and the operator's
		// pod policy, not this flag, are what keep tenants from them.
		"--allow-privileged=true",
		"--max-requests-inflight=2000", "--max-mutating-requests-inflight=1000", "--v=1",
	})
	if err != nil {
		return err
	}
	return f.waitHTTP(ctx, "kube-apiserver", fmt.Sprintf("https://127.0.0.1:%d/readyz", p.APIServer), 90*time.Second)
}

func (f *Factory) startControllerManager(ctx context.Context) error {
	p, k := f.Ports, f.pki.path
	err := f.start("kube-controller-manager", f.bin("kube-controller-manager"), []string{
		"--kubeconfig=" + f.Kubeconfig, "--authentication-kubeconfig=" + f.Kubeconfig, "--authorization-kubeconfig=" + f.Kubeconfig,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", p.ControllerManager), "--leader-elect=false",
		"--tls-cert-file=" + k("kube-controller-manager.crt"), "--tls-private-key-file=" + k("kube-controller-manager.key"),
		"--service-account-private-key-file=" + k("sa.key"), "--root-ca-file=" + k("ca.crt"),
		// Each controller acts as its own service account, as on kubeadm clusters: the tenant pod admission policy
		// recognises the Job controller by it.
		"--use-service-account-credentials=true", "--controllers=*,-nodeipam", "--kube-api-qps=200", "--kube-api-burst=400", "--v=1",
	})
	if err != nil {
		return err
	}
	return f.waitHTTP(ctx, "kube-controller-manager", fmt.Sprintf("https://127.0.0.1:%d/healthz", p.ControllerManager), 60*time.Second)
}

func (f *Factory) startScheduler(ctx context.Context) error {
	p, k := f.Ports, f.pki.path
	err := f.start("kube-scheduler", f.bin("kube-scheduler"), []string{
		"--tls-cert-file=" + k("kube-scheduler.crt"), "--tls-private-key-file=" + k("kube-scheduler.key"),
		"--kubeconfig=" + f.Kubeconfig, "--authentication-kubeconfig=" + f.Kubeconfig, "--authorization-kubeconfig=" + f.Kubeconfig,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", p.Scheduler), "--leader-elect=false",
		"--kube-api-qps=200", "--kube-api-burst=400", "--v=1",
	})
	if err != nil {
		return err
	}
	return f.waitHTTP(ctx, "kube-scheduler", fmt.Sprintf("https://127.0.0.1:%d/healthz", p.Scheduler), 60*time.Second)
}

// startKwok runs kwok for the nodes annotated kwok.x-k8s.io/node=fake, with the factory's stages: nodes become
// Ready, scheduled pods run, workers finish after their simulated runtime, and deleted pods go.
func (f *Factory) startKwok(ctx context.Context) error {
	stages := filepath.Join(f.Dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, kwokStages, 0o600); err != nil {
		return err
	}
	err := f.start("kwok", f.bin("kwok"), []string{
		"--kubeconfig=" + f.Kubeconfig, "--config=" + stages,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-lease-duration-seconds=40", "--cidr=127.1.0.1/16", "--node-ip=127.0.0.1",
		fmt.Sprintf("--server-address=127.0.0.1:%d", f.Ports.Kwok),
	})
	if err != nil {
		return err
	}
	return f.waitHTTP(ctx, "kwok", fmt.Sprintf("http://127.0.0.1:%d/healthz", f.Ports.Kwok), 30*time.Second)
}

// startKueue installs Kueue's CRDs, runs the stock Kueue manager for batch/Job, and registers its webhooks by
// URL once it answers.
func (f *Factory) startKueue(ctx context.Context) error {
	if err := f.applyDir(ctx, filepath.Join(f.KueueDir, "config", "components", "crd", "bases")); err != nil {
		return fmt.Errorf("kueue CRDs: %w", err)
	}
	if err := f.ensureNamespace(ctx, "kueue-system"); err != nil {
		return err
	}
	certs := filepath.Join(f.Dir, "kueue-certs")
	if err := f.servingDir(certs, "kueue-webhook"); err != nil {
		return err
	}
	config := KueueConfig(f.Ports.KueueHealth, f.Ports.KueueWebhook, certs)
	cfgFile := filepath.Join(f.Dir, "kueue-config.yaml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		return err
	}
	err := f.start("kueue", f.bin("kueue"), []string{
		"--config=" + cfgFile, "--kubeconfig=" + f.Kubeconfig, "--feature-gates=VisibilityOnDemand=false", "--zap-log-level=info",
	}, "KUEUE_METRICS_CERT_DIR="+certs)
	if err != nil {
		return err
	}
	if err := f.waitHTTP(ctx, "kueue", fmt.Sprintf("http://127.0.0.1:%d/readyz", f.Ports.KueueHealth), 90*time.Second); err != nil {
		return err
	}
	return f.registerWebhooks(ctx, filepath.Join(f.KueueDir, "config", "components", "webhook", "manifests.yaml"), "kueue-", f.Ports.KueueWebhook, kueueWebhookWanted)
}

// startOperator installs the operator's CRDs and RBAC, runs the manager as a user that holds only that RBAC,
// and registers its webhooks by URL once it answers.
func (f *Factory) startOperator(ctx context.Context) error {
	if err := f.applyDir(ctx, filepath.Join(f.RepoDir, "config", "crd", "bases")); err != nil {
		return fmt.Errorf("operator CRDs: %w", err)
	}
	if err := f.ensureNamespace(ctx, "aifactory-system"); err != nil {
		return err
	}
	if err := f.applyFile(ctx, filepath.Join(f.RepoDir, "config", "rbac", "role.yaml")); err != nil {
		return fmt.Errorf("operator RBAC: %w", err)
	}
	if err := f.applyFile(ctx, filepath.Join(f.RepoDir, "config", "policy", "tenant-gpu-pods.yaml")); err != nil {
		return fmt.Errorf("tenant pod admission policy: %w", err)
	}
	if err := f.bindOperator(ctx); err != nil {
		return err
	}
	certs := filepath.Join(f.Dir, "operator-certs")
	if err := f.servingDir(certs, "operator-webhook"); err != nil {
		return err
	}
	cfgFile := filepath.Join(f.Dir, "operator-config.yaml")
	b, err := yaml.Marshal(f.OperatorConfig())
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		return err
	}
	for _, d := range []string{"lustre-datasets", "lustre-scratch"} {
		if err := os.MkdirAll(filepath.Join(f.Dir, "data", d), 0o755); err != nil { //nolint:gosec // a simulated shared filesystem
			return err
		}
	}
	p := f.Ports
	err = f.start("operator", f.Manager, []string{
		"--config=" + cfgFile,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", p.OperatorMetrics),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", p.OperatorHealth),
		"--webhook-host=127.0.0.1", fmt.Sprintf("--webhook-port=%d", p.OperatorWebhook), "--webhook-cert-dir=" + certs,
		"--leader-elect=true", "--leader-election-namespace=aifactory-system",
	}, "KUBECONFIG="+filepath.Join(f.Dir, "operator.kubeconfig"))
	if err != nil {
		return err
	}
	if err := f.waitHTTP(ctx, "operator", fmt.Sprintf("http://127.0.0.1:%d/readyz", p.OperatorHealth), 60*time.Second); err != nil {
		return err
	}
	return f.registerWebhooks(ctx, filepath.Join(f.RepoDir, "config", "webhook", "manifests.yaml"), "aifactory-", p.OperatorWebhook, func(string) bool { return true })
}

// KueueConfig is the Kueue manager's configuration outside a cluster: health and webhook on 127.0.0.1, no
// metrics, no leader election, no internal certificate management (its certificates are given in certDir). The
// rest is what the operator needs of every Kueue installation (docs/isolation.md): the batch/Job and Pod
// integrations, and every Job and Pod in a tenant namespace (one labelled aifactory.eu/tenant by the operator)
// managed by Kueue whether it names a queue or not, so nothing there reaches a GPU outside the tenant's quota.
func KueueConfig(healthPort, webhookPort int, certDir string) string {
	return fmt.Sprintf(`apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: kueue-system
health: {healthProbeBindAddress: "127.0.0.1:%d"}
metrics: {bindAddress: "0"}
webhook: {host: 127.0.0.1, port: %d, certDir: %q}
leaderElection: {leaderElect: false}
internalCertManagement: {enable: false}
manageJobsWithoutQueueName: true
managedJobsNamespaceSelector:
  matchExpressions: [{key: %s, operator: Exists}]
integrations:
  frameworks: ["batch/job", "pod"]
`, healthPort, webhookPort, certDir, aifv1.TenantLabel)
}

// OperatorConfig is the operator configuration of the factory: the two simulated Lustre filesystems as
// hostPath folders under the state folder, and the two GPU classes of the simulated nodes.
func (f *Factory) OperatorConfig() *configv1.Configuration {
	return &configv1.Configuration{
		TypeMeta: metaConfig(),
		Filesystems: []configv1.Filesystem{
			{Name: FilesystemDatasets, Type: "Lustre", HostPath: &configv1.HostPathFilesystem{Root: filepath.Join(f.Dir, "data", FilesystemDatasets)}},
			{Name: FilesystemScratch, Type: "Lustre", HostPath: &configv1.HostPathFilesystem{Root: filepath.Join(f.Dir, "data", FilesystemScratch)}},
		},
		GPUClasses: []configv1.GPUClass{
			{Name: ClassH100, Resource: "nvidia.com/gpu", NodeLabels: map[string]string{productLabel: productH100}, PowerWatts: 700},
			{Name: ClassMIG, Resource: migResource, NodeLabels: map[string]string{productLabel: productA100}, PowerWatts: 57},
		},
		Verification: configv1.Verification{Image: "aifactory-operator:local"},
	}
}

// startVerifier runs the factory binary again in the background as the simulated dataset verifier.
func (f *Factory) startVerifier(context.Context) error {
	return f.start("verifier", f.Self, []string{"verifier", "--manager=" + f.Manager},
		"KUBECONFIG="+f.Kubeconfig)
}

// servingDir puts a serving certificate as tls.crt and tls.key in dir, where webhook servers look for them.
func (f *Factory) servingDir(dir, name string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, ext := range []string{"crt", "key"} {
		b, err := os.ReadFile(f.pki.path(name + "." + ext))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "tls."+ext), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}
