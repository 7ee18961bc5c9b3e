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
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/ports"
)

// Controllers are the kube-controller-manager controllers the scenarios rely
// on: Deployments roll out through ReplicaSets, PodDisruptionBudgets gate
// evictions, the garbage collector removes what replaced ReplicaSets
// leave behind, and the ServiceAccount controller creates each namespace's
// default ServiceAccount, whose tokens the kubelet projects into pods.
//
// The EndpointSlice controller is left out: the apiserver refuses loopback
// addresses in EndpointSlices, and every pod here has one, so it could only
// fail and retry. The load balancer controller's stand-in applies its rules
// to the pods itself (see package lbc).
var Controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"disruption-controller",
	"serviceaccount-controller",
	"garbage-collector-controller",
}

// controllerManagerStartTimeout bounds the wait for /healthz; the binary
// starts in a few seconds even on a loaded 2-core machine.
const controllerManagerStartTimeout = 90 * time.Second

// ControllerManager is a running kube-controller-manager subprocess.
type ControllerManager struct {
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	done    chan struct{}
	waitErr error
	// LogPath is the process's log, kept for post-mortems.
	LogPath string
}

// EndpointSliceController is the controller a real node's tests add to
// Controllers: their pods have addresses the apiserver accepts in
// EndpointSlices, so the load balancer controller's stand-in can read them
// as the real controller does.
const EndpointSliceController = "endpointslice-controller"

// StartControllerManager runs the kube-controller-manager found next to the
// apiserver in KUBEBUILDER_ASSETS against env, as a cluster administrator,
// with the Controllers enabled, or controllers when given. dir receives its
// kubeconfig and log. It returns once the process reports healthy.
func StartControllerManager(env *kubetest.Env, dir string, controllers ...string) (*ControllerManager, error) {
	return StartControllerManagerWithFlags(env, dir, nil, controllers...)
}

// StartControllerManagerWithFlags is StartControllerManager with flags
// added to the process's command line.
func StartControllerManagerWithFlags(env *kubetest.Env, dir string, flags []string, controllers ...string) (*ControllerManager, error) {
	if len(controllers) == 0 {
		controllers = Controllers
	}
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no kube-controller-manager in KUBEBUILDER_ASSETS: run `make assets`: %w", err)
	}
	user, err := env.Environment.AddUser(envtest.User{Name: "kube-controller-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("provision the controller manager's user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("controller manager kubeconfig: %w", err)
	}
	kubeconfigPath := filepath.Join(dir, "kube-controller-manager.kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	port, err := ports.Reserve()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "kube-controller-manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{
		"--kubeconfig=" + kubeconfigPath,
		"--authentication-kubeconfig=" + kubeconfigPath,
		"--authorization-kubeconfig=" + kubeconfigPath,
		"--controllers=" + strings.Join(controllers, ","),
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + dir,
		// The scenarios create pods in bursts; the default 20 QPS would add
		// client-side throttling delays that no real cluster has at this size.
		"--kube-api-qps=200",
		"--kube-api-burst=400",
	}, flags...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Stop it like a kubelet stops a static pod: SIGTERM, then SIGKILL.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start kube-controller-manager: %w", err)
	}
	cm := &ControllerManager{cmd: cmd, cancel: cancel, done: make(chan struct{}), LogPath: logPath}
	go func() {
		cm.waitErr = cmd.Wait()
		close(cm.done)
	}()
	if err := cm.waitHealthy(port); err != nil {
		return nil, errors.Join(err, cm.Stop())
	}
	return cm, nil
}

// waitHealthy polls /healthz until it answers 200, the process exits, or
// the start timeout passes.
func (cm *ControllerManager) waitHealthy(port int) error {
	client := &http.Client{
		Timeout: 2 * time.Second,
		// The serving certificate is self-signed; only its liveness matters here.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	deadline := time.NewTimer(controllerManagerStartTimeout)
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
		case <-cm.done:
			return fmt.Errorf("kube-controller-manager exited: %v (log: %s)", cm.waitErr, cm.LogPath)
		case <-deadline.C:
			return fmt.Errorf("kube-controller-manager not healthy after %s (log: %s)", controllerManagerStartTimeout, cm.LogPath)
		case <-tick.C:
		}
	}
}

// Stop terminates the process and waits for it to exit.
func (cm *ControllerManager) Stop() error {
	cm.cancel()
	<-cm.done
	var exit *exec.ExitError
	if errors.As(cm.waitErr, &exit) && !exit.Exited() {
		return nil // ended by our signal, as intended
	}
	return cm.waitErr
}
