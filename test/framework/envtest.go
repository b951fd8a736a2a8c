// Package framework starts a real kube-apiserver and etcd (controller-runtime's envtest) with the operator's and
// Kueue's CRDs installed, for the integration tests. The binaries come from hack/ensure-bins.sh, which `make
// unit` and `make test` run first; KUBEBUILDER_ASSETS points at them.
package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/yaml"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers"
	"github.com/aifactory-eu/aifactory-operator/internal/gomod"
)

// Named waits for the tests' Eventually and Consistently calls.
const (
	// Timeout bounds how long a test waits for the cluster to reach a state.
	Timeout = 30 * time.Second
	// Interval spaces the checks while waiting.
	Interval = 100 * time.Millisecond
)

// Env is a running API server with the CRDs installed and a client for it.
type Env struct {
	testEnv *envtest.Environment
	// Config reaches the API server as cluster admin.
	Config *rest.Config
	// Client is a cluster-admin client that rejects unknown and duplicate fields (like kubectl does).
	Client client.Client
}

// RepoRoot is the repository's top folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// KueueDir is the folder of the Kueue module that go.mod pins, downloaded into the module cache if it is not
// there yet.
func KueueDir() (string, error) {
	d, err := gomod.Dir(context.Background(), RepoRoot(), "sigs.k8s.io/kueue")
	if err != nil {
		return "", fmt.Errorf("locating the Kueue module: %w", err)
	}
	return d, nil
}

// KueueCRDDir is the folder of Kueue's CRDs in the Go module cache, at the version go.mod pins.
func KueueCRDDir() (string, error) {
	d, err := KueueDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "config", "components", "crd", "bases"), nil
}

// Option changes how the test API server is set up.
type Option func(*envtest.Environment)

// WithWebhooks registers the operator's admission webhooks (config/webhook) by URL on 127.0.0.1, with
// envtest's own serving certificate, and limits the Pod webhook to tenant namespaces as the chart does. The
// operator must then run (StartOperator) for those kinds to be writable.
func WithWebhooks() Option {
	return func(te *envtest.Environment) {
		te.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(RepoRoot(), "config", "webhook")}}
	}
}

// operatorWebhooks reads config/webhook/manifests.yaml and gives the Pod webhook the tenant namespace selector.
func operatorWebhooks() ([]*admissionv1.ValidatingWebhookConfiguration, error) {
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "config", "webhook", "manifests.yaml"))
	if err != nil {
		return nil, err
	}
	var out []*admissionv1.ValidatingWebhookConfiguration
	for _, doc := range strings.Split(string(b), "\n---") {
		v := &admissionv1.ValidatingWebhookConfiguration{}
		if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
			return nil, fmt.Errorf("config/webhook/manifests.yaml: %w", err)
		}
		if v.Kind != "ValidatingWebhookConfiguration" {
			continue
		}
		for i := range v.Webhooks {
			w := &v.Webhooks[i]
			if p := w.ClientConfig.Service; p != nil && p.Path != nil && strings.HasSuffix(*p.Path, "--v1-pod") {
				w.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: aifv1.TenantLabel, Operator: metav1.LabelSelectorOpExists}}}
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// Start starts etcd and kube-apiserver and installs the CRDs. Call Stop when done.
func Start(opts ...Option) (*Env, error) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false), zap.Level(logLevel())))
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run the tests with `make unit`, or export " +
			"KUBEBUILDER_ASSETS=$(hack/ensure-bins.sh | tail -1)")
	}
	kueueCRDs, err := KueueCRDDir()
	if err != nil {
		return nil, err
	}
	te := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases"), kueueCRDs},
		ErrorIfCRDPathMissing: true,
		Scheme:                controllers.NewScheme(),
	}
	// Privileged pods are allowed, as on real clusters (device plugins and CNI need them): the operator's pod
	// policy and Pod Security must be what refuses them.
	te.ControlPlane.GetAPIServer().Configure().Set("allow-privileged", "true")
	for _, o := range opts {
		o(te)
	}
	if len(te.WebhookInstallOptions.Paths) > 0 {
		hooks, err := operatorWebhooks()
		if err != nil {
			return nil, err
		}
		te.WebhookInstallOptions = envtest.WebhookInstallOptions{ValidatingWebhooks: hooks}
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: te.Scheme})
	if err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	return &Env{testEnv: te, Config: cfg, Client: client.WithFieldValidation(c, metav1.FieldValidationStrict)}, nil
}

// WebhookServerOptions is where the operator's webhook server must listen for the registered webhooks.
func (e *Env) WebhookServerOptions() webhook.Options {
	w := e.testEnv.WebhookInstallOptions
	return webhook.Options{Host: w.LocalServingHost, Port: w.LocalServingPort, CertDir: w.LocalServingCertDir}
}

// Stop stops the API server and etcd.
func (e *Env) Stop() error {
	return e.testEnv.Stop()
}

// CreateNamespaces creates namespaces (tenant namespaces in tests); existing ones are left alone.
func (e *Env) CreateNamespaces(ctx context.Context, names ...string) error {
	for _, n := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}
		if err := e.Client.Create(ctx, ns); client.IgnoreAlreadyExists(err) != nil {
			return fmt.Errorf("creating namespace %s: %w", n, err)
		}
	}
	return nil
}

// logLevel is error unless TEST_VERBOSE is set.
func logLevel() zapcore.Level {
	if os.Getenv("TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}
