package factory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// start runs a component in its own session, detached from the caller, with its output in logs/<name>.log and
// its PID in pids/<name>.pid.
func (f *Factory) start(name, bin string, args []string, env ...string) error {
	log, err := os.OpenFile(filepath.Join(f.Dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	exe, err := filepath.EvalSymlinks(cmd.Path)
	if err != nil {
		exe = cmd.Path
	}
	// The binary goes with the PID, so that a PID the system has since given to another program is not ours.
	if err := os.WriteFile(f.pidFile(name), []byte(strconv.Itoa(pid)+" "+exe), 0o600); err != nil {
		return err
	}
	return cmd.Process.Release()
}

func (f *Factory) pidFile(name string) string { return filepath.Join(f.Dir, "pids", name+".pid") }

// running returns the PID of a component that was started and still runs.
func (f *Factory) running(name string) (int, bool) {
	b, err := os.ReadFile(f.pidFile(name))
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, false
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 0 {
		return 0, false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || strings.TrimSuffix(exe, " (deleted)") != fields[1] {
		return 0, false // gone, or the PID now belongs to another program
	}
	return pid, !zombie(pid)
}

// zombie reports whether pid has exited but was not reaped (a component started by a process that still runs,
// such as a test).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// Kill ends a component at once with SIGKILL, as a crash or an out-of-memory kill would, and waits until it is
// gone. Up starts it again.
func (f *Factory) Kill(name string) error {
	pid, ok := f.running(name)
	if !ok {
		return fmt.Errorf("%s does not run", name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s (pid %d): %w", name, pid, err)
	}
	// A process's exit has nothing to watch but its PID.
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, ok := f.running(name)
		return !ok, nil
	}); err != nil {
		return fmt.Errorf("%s (pid %d) did not exit: %w", name, pid, err)
	}
	return os.Remove(f.pidFile(name))
}

// stop ends a component by its recorded PID: SIGTERM, then SIGKILL after 10 seconds.
func (f *Factory) stop(name string) error {
	pid, ok := f.running(name)
	if !ok {
		_ = os.Remove(f.pidFile(name))
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	// A process's exit has nothing to watch but its PID.
	exited := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, ok := f.running(name)
		return !ok, nil
	})
	if exited == nil {
		return os.Remove(f.pidFile(name))
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping %s (pid %d): %w", name, pid, err)
	}
	return os.Remove(f.pidFile(name))
}

// waitHTTP waits until url answers 200, or the component exits, or the timeout passes. HTTPS endpoints are
// checked against the factory's CA, with the admin client certificate when the endpoint asks for one.
func (f *Factory) waitHTTP(ctx context.Context, name, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	if strings.HasPrefix(url, "https://") {
		ca, err := f.pki.caPEM()
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		cert, err := tls.LoadX509KeyPair(f.pki.path("admin.crt"), f.pki.path("admin.key"))
		if err != nil {
			return err
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if _, ok := f.running(name); !ok {
			return fmt.Errorf("%s exited; see %s", name, filepath.Join(f.Dir, "logs", name+".log"))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer %s within %s; see %s", name, url, timeout, filepath.Join(f.Dir, "logs", name+".log"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
