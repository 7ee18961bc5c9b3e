package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Hook actions, as recorded in HookRun.Action.
const (
	ActionExec    = "exec"
	ActionSleep   = "sleep"
	ActionHTTPGet = "httpGet"
)

// maxHookOutput bounds how much of an exec hook's output is kept.
const maxHookOutput = 16 << 10

// HookRun is one container's preStop hook as the kubelet ran it.
type HookRun struct {
	Container string
	Action    string
	// Command is an exec hook's command line as the pod declares it.
	Command    []string
	Start, End time.Time
	// Err is why the hook failed ("" when it succeeded); the kubelet goes
	// on stopping the container either way.
	Err string
	// Output is the end of an exec hook's combined stdout and stderr.
	Output string
}

// Duration is how long the hook ran.
func (h HookRun) Duration() time.Duration { return h.End.Sub(h.Start) }

// runPreStop runs one container's preStop hook until it ends or ctx (the
// pod's grace period) does.
func (p *podRuntime) runPreStop(ctx context.Context, c corev1.Container) HookRun {
	h := c.Lifecycle.PreStop
	run := HookRun{Container: c.Name, Start: time.Now()}
	var err error
	switch {
	case h.Exec != nil:
		run.Action, run.Command = ActionExec, h.Exec.Command
		run.Output, err = p.execHook(ctx, c, h.Exec.Command)
	case h.Sleep != nil:
		run.Action = ActionSleep
		err = sleepHook(ctx, time.Duration(h.Sleep.Seconds)*time.Second)
	case h.HTTPGet != nil:
		run.Action = ActionHTTPGet
		err = p.httpGetHook(ctx, c, h.HTTPGet)
	default:
		err = errors.New("preStop has no action this kubelet runs")
	}
	run.End = time.Now()
	if err != nil {
		run.Err = err.Error()
	}
	return run
}

// execHook runs the command as a real process with the container's resolved
// environment. Its program is looked up in the executables table, the
// stand-in for the container's filesystem: there the albdrain-init
// container's install has put the helper at contract.HelperPath.
func (p *podRuntime) execHook(ctx context.Context, c corev1.Container, command []string) (string, error) {
	if len(command) == 0 {
		return "", errors.New("exec hook without a command")
	}
	bin, ok := p.k.opts.Executables[command[0]]
	if !ok {
		return "", fmt.Errorf("exec %q: no such file in the container", command[0])
	}
	out := &tailBuffer{max: maxHookOutput}
	cmd := exec.CommandContext(ctx, bin, command[1:]...)
	cmd.Env = p.env[c.Name]
	cmd.Stdout, cmd.Stderr = out, out
	// The kubelet's hook timeout ends the process; SIGKILL follows if it
	// ignores SIGTERM.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	return out.String(), err
}

func sleepHook(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sleep cut short by the grace period: %w", ctx.Err())
	}
}

// httpGetHook sends the hook's GET, by default to the pod's own IP. Only
// loopback hosts are contacted.
func (p *podRuntime) httpGetHook(ctx context.Context, c corev1.Container, g *corev1.HTTPGetAction) error {
	host := g.Host
	if host == "" {
		host = p.ip.String()
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return fmt.Errorf("httpGet host %q: this kubelet only contacts loopback IPs", host)
	}
	port, err := containerPort(c, g.Port)
	if err != nil {
		return err
	}
	scheme := "http"
	if g.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/" + strings.TrimPrefix(g.Path, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("httpGet %s: %s", url, resp.Status)
	}
	return nil
}

// containerPort resolves a hook's port, by number or by the name of one of
// the container's ports.
func containerPort(c corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.Name, port.StrVal)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
