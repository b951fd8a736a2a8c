package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onsi/gomega"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount/manifest"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// TestManagerStarts runs the manager as main does, against a real API server: it loads the shipped
// configuration, wins leader election, serves health and metrics, and runs the three controllers.
func TestManagerStarts(t *testing.T) {
	env, err := framework.Start(framework.WithWebhooks())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	o := options{
		configFile:              filepath.Join(framework.RepoRoot(), "config", "manager", "configuration.yaml"),
		metricsAddr:             freeAddr(t),
		metricsSecure:           false,
		probeAddr:               freeAddr(t),
		leaderElect:             true,
		leaderElectionNamespace: "default",
		webhookHost:             env.WebhookServerOptions().Host,
		webhookPort:             env.WebhookServerOptions().Port,
		webhookCertDir:          env.WebhookServerOptions().CertDir,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, env.Config) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager returned %v", err)
		}
	})

	waitFor(t, "readyz", func() error { _, err := get("http://" + o.probeAddr + "/readyz"); return err })
	waitFor(t, "healthz", func() error { _, err := get("http://" + o.probeAddr + "/healthz"); return err })
	waitFor(t, "leader election lease", func() error {
		lease := &coordinationv1.Lease{}
		key := client.ObjectKey{Namespace: "default", Name: "aifactory-operator.aifactory.eu"}
		if err := env.Client.Get(ctx, key, lease); err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return fmt.Errorf("lease has no holder")
		}
		return nil
	})
	waitFor(t, "controllers in metrics", func() error {
		body, err := get("http://" + o.metricsAddr + "/metrics")
		if err != nil {
			return err
		}
		for _, c := range []string{"tenantquota", "datasetmount", "trainingjob"} {
			if !strings.Contains(body, fmt.Sprintf(`controller_runtime_active_workers{controller=%q}`, c)) {
				return fmt.Errorf("no workers metric for controller %s", c)
			}
		}
		return nil
	})
}

func TestRunRejectsABadConfigFile(t *testing.T) {
	o := options{configFile: filepath.Join(t.TempDir(), "missing.yaml")}
	err := run(context.Background(), o, nil)
	if err == nil || !strings.Contains(err.Error(), "reading configuration") {
		t.Fatalf("want a configuration error, got %v", err)
	}
}

// waitFor waits with gomega's Eventually until check succeeds.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	gomega.NewWithT(t).Eventually(check).WithTimeout(framework.Timeout).WithPolling(framework.Interval).
		Should(gomega.Succeed(), what)
}

func get(url string) (string, error) {
	resp, err := http.Get(url) //nolint:gosec // loopback test endpoint
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

func TestVerifyDatasetWritesTheManifest(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.csv"), []byte("1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	termLog := filepath.Join(t.TempDir(), "termination-log")
	var out strings.Builder
	if err := verifyDataset([]string{"--root=" + root, "--mode=Content", "--termination-log=" + termLog}, &out); err != nil {
		t.Fatal(err)
	}
	logged, err := os.ReadFile(termLog)
	if err != nil {
		t.Fatal(err)
	}
	var res manifest.Result
	if err := json.Unmarshal(logged, &res); err != nil {
		t.Fatalf("termination log is not a manifest: %q", logged)
	}
	want, _ := manifest.Compute(root, manifest.Content)
	if res.Digest != want.Digest || res.Files != 1 || res.Bytes != 4 || strings.TrimSpace(out.String()) != string(logged) {
		t.Fatalf("got %+v (stdout %q), want digest %s", res, out.String(), want.Digest)
	}
	if err := verifyDataset([]string{"--root=" + filepath.Join(root, "missing"), "--termination-log=" + termLog}, &out); err == nil {
		t.Fatal("a missing dataset must fail")
	}
	if logged, _ := os.ReadFile(termLog); !strings.Contains(string(logged), "missing") {
		t.Fatalf("the failure should be in the termination log: %q", logged)
	}
}
