// Command manager is the AI Factory Operator: it runs the TenantQuota, DatasetMount and TrainingJob
// controllers and their admission webhooks. "manager verify-dataset" computes a dataset's manifest digest in a
// DatasetMount's verification Job.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers"
	operatorconfig "github.com/aifactory-eu/aifactory-operator/internal/config"
)

// options are the manager's command-line flags.
type options struct {
	configFile              string
	metricsAddr             string
	metricsSecure           bool
	probeAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	webhookHost             string
	webhookPort             int
	webhookCertDir          string
}

func (o *options) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.configFile, "config", "", "Path to the operator configuration file (config.aifactory.eu/v1alpha1 Configuration). Empty: no filesystems or GPU classes are configured.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address of the Prometheus metrics endpoint; \"0\" turns it off.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS, authenticating and authorizing scrapers against the API server.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader so that only one of several replicas reconciles.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the pod's namespace).")
	fs.StringVar(&o.webhookHost, "webhook-host", "", "Address the admission webhook server listens on (default: all).")
	fs.IntVar(&o.webhookPort, "webhook-port", 9443, "Port of the admission webhook server.")
	fs.StringVar(&o.webhookCertDir, "webhook-cert-dir", "", "Folder with tls.crt and tls.key of the webhook server (default: <temp>/k8s-webhook-server/serving-certs).")
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "verify-dataset" {
		if err := verifyDataset(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "verify-dataset:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	o.bind(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	restCfg, err := ctrl.GetConfig()
	if err != nil {
		ctrl.Log.Error(err, "finding the API server")
		os.Exit(1)
	}
	if err := run(ctrl.SetupSignalHandler(), o, restCfg); err != nil {
		ctrl.Log.Error(err, "manager exited")
		os.Exit(1)
	}
}

func loadConfig(file string) (*configv1.Configuration, error) {
	if file == "" {
		c := &configv1.Configuration{}
		configv1.SetDefaults(c)
		return c, nil
	}
	return operatorconfig.Load(file)
}

// run starts the manager and blocks until ctx ends.
func run(ctx context.Context, o options, restCfg *rest.Config) error {
	cfg, err := loadConfig(o.configFile)
	if err != nil {
		return err
	}
	metricsOpts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.metricsSecure}
	if o.metricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                  controllers.NewScheme(),
		Cache:                   controllers.CacheOptions(),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "aifactory-operator.aifactory.eu",
		LeaderElectionNamespace: o.leaderElectionNamespace,
		// The process exits once the manager stops, so it can hand the lease over at once instead of letting the
		// next replica wait for it to expire.
		LeaderElectionReleaseOnCancel: true,
		WebhookServer:                 webhook.NewServer(webhook.Options{Host: o.webhookHost, Port: o.webhookPort, CertDir: o.webhookCertDir}),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.Setup(ctx, mgr, controllers.Options{Config: cfg}); err != nil {
		return err
	}
	if err := errors.Join(
		mgr.AddHealthzCheck("healthz", healthz.Ping),
		mgr.AddReadyzCheck("readyz", healthz.Ping),
	); err != nil {
		return fmt.Errorf("adding health checks: %w", err)
	}
	ctrl.Log.Info("starting manager", "filesystems", len(cfg.Filesystems), "gpuClasses", len(cfg.GPUClasses))
	return mgr.Start(ctx)
}
