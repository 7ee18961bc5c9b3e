package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/ports"
	"github.com/albdrain/albdrain/e2e/reaper"
)

// daemonStartTimeout bounds the wait for /healthz; the binaries start in a
// few seconds even on a loaded 2-core machine.
const daemonStartTimeout = 90 * time.Second

// Daemon is a running control-plane subprocess besides the apiserver:
// kube-controller-manager or kube-scheduler.
type Daemon struct {
	name    string
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	done    chan struct{}
	waitErr error
	// stopCode is an exit code that answers Stop's SIGTERM as a clean exit would.
	stopCode int
	// LogPath is the process's log, kept for post-mortems.
	LogPath string
}

// startDaemon runs the binary name found next to the apiserver in
// KUBEBUILDER_ASSETS against env, as a cluster administrator, with the
// command line args returns for its kubeconfig, certificate directory and
// secure port. dir receives its kubeconfig, certificates and log. It
// returns once the process reports healthy.
func startDaemon(env *kubetest.Env, dir, name string, args func(kubeconfig, certDir string, port int) []string) (*Daemon, error) {
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), name)
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no %s in KUBEBUILDER_ASSETS: run `make assets node-assets`: %w", name, err)
	}
	user, err := env.Environment.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("provision %s's user: %w", name, err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("%s kubeconfig: %w", name, err)
	}
	kubeconfigPath := filepath.Join(dir, name+".kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	port, err := ports.Reserve()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	certDir := filepath.Join(dir, name+"-certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args(kubeconfigPath, certDir, port)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Stop it like a kubelet stops a static pod: SIGTERM, then SIGKILL.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	wait, err := reaper.Start(cmd)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &Daemon{name: name, cmd: cmd, cancel: cancel, done: make(chan struct{}), LogPath: logPath}
	go func() {
		d.waitErr = wait()
		close(d.done)
	}()
	if err := d.waitHealthy(port); err != nil {
		return nil, errors.Join(err, d.Stop())
	}
	return d, nil
}

// waitHealthy polls /healthz until it answers 200, the process exits, or
// the start timeout passes.
func (d *Daemon) waitHealthy(port int) error {
	client := &http.Client{
		Timeout: 2 * time.Second,
		// The serving certificate is self-signed; only its liveness matters here.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	deadline := time.NewTimer(daemonStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-d.done:
			return fmt.Errorf("%s exited: %v (log: %s)", d.name, d.waitErr, d.LogPath)
		case <-deadline.C:
			return fmt.Errorf("%s not healthy after %s (log: %s)", d.name, daemonStartTimeout, d.LogPath)
		case <-tick.C:
		}
	}
}

// Stop terminates the process and waits for it to exit.
func (d *Daemon) Stop() error {
	d.cancel()
	<-d.done
	var exit *exec.ExitError
	if errors.As(d.waitErr, &exit) && (!exit.Exited() || exit.ExitCode() == d.stopCode) {
		return nil // ended by our signal, as intended
	}
	return d.waitErr
}
