package framework

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/aifactory-eu/aifactory-operator/internal/factory"
)

// Kueue is the stock Kueue manager (built by hack/ensure-bins.sh) running as a separate process against the
// test API server, with the batch/Job integration. Its webhooks are not registered: tests create Jobs already
// suspended, which is what Kueue's defaulting webhook would do.
type Kueue struct {
	cmd  *exec.Cmd
	dir  string
	done chan error
	// Log is the file Kueue's output goes to; it outlives Stop so that a failed suite can point at it.
	Log string
}

// StartKueue starts the Kueue manager and waits until it is ready. Its output goes to a temporary file, Log.
func (e *Env) StartKueue(ctx context.Context) (*Kueue, error) {
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kueue")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("the Kueue manager is not built (run `make unit` or hack/ensure-bins.sh kueue): %w", err)
	}
	if err := e.CreateNamespaces(ctx, "kueue-system"); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kueue-")
	if err != nil {
		return nil, err
	}
	user, err := e.testEnv.AddUser(envtest.User{Name: "kueue", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding the kueue user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	health, webhook := freePort(), freePort()
	config := factory.KueueConfig(health, webhook, filepath.Join(dir, "certs"))
	files := map[string][]byte{"kubeconfig": kubeconfig, "config.yaml": []byte(config)}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	if err := writeServingCert(filepath.Join(dir, "certs")); err != nil {
		return nil, err
	}
	logFile, err := os.CreateTemp("", "kueue-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config="+filepath.Join(dir, "config.yaml"), "--kubeconfig="+filepath.Join(dir, "kubeconfig"),
		"--feature-gates=VisibilityOnDemand=false", "--zap-log-level=info")
	cmd.Env = append(os.Environ(), "KUEUE_METRICS_CERT_DIR="+filepath.Join(dir, "certs"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kueue: %w", err)
	}
	k := &Kueue{cmd: cmd, dir: dir, done: make(chan error, 1), Log: logFile.Name()}
	go func() { k.done <- cmd.Wait(); _ = logFile.Close() }()
	if err := k.waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", health)); err != nil {
		_ = k.Stop()
		return nil, fmt.Errorf("%w (log: %s)", err, logFile.Name())
	}
	return k, nil
}

// waitReady polls Kueue's readiness endpoint until it answers 200 or Kueue exits.
func (k *Kueue) waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*Timeout)
	defer cancel()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		if resp, err := http.Get(url); err == nil { //nolint:gosec // loopback health endpoint
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-k.done:
			k.done <- err
			return fmt.Errorf("kueue exited before it was ready: %w", err)
		case <-ctx.Done():
			return errors.New("kueue not ready in time")
		case <-tick.C:
		}
	}
}

// Stop terminates the Kueue manager.
func (k *Kueue) Stop() error {
	defer func() { _ = os.RemoveAll(k.dir) }()
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-k.done:
		return ignoreSignal(err)
	case <-time.After(Timeout):
		_ = k.cmd.Process.Kill()
		return ignoreSignal(<-k.done)
	}
}

// ignoreSignal treats an exit caused by the stop signal as a clean stop.
func ignoreSignal(err error) error {
	var exit *exec.ExitError
	if errors.As(err, &exit) && !exit.Exited() {
		return nil
	}
	return err
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// writeServingCert writes a self-signed certificate for 127.0.0.1 as tls.crt and tls.key in dir.
func writeServingCert(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	var crt, k bytes.Buffer
	_ = pem.Encode(&crt, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	_ = pem.Encode(&k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), crt.Bytes(), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.key"), k.Bytes(), 0o600)
}
