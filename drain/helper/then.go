package helper

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// runThen runs the container's own preStop the way the kubelet would have:
// an exec runs its argv directly (no shell), an httpGet goes to the pod IP
// unless it names a host, a sleep sleeps.
func runThen(ctx context.Context, h *contract.Handler, podIP netip.Addr, opts Options) error {
	switch {
	case h.Exec != nil:
		if len(h.Exec.Command) == 0 {
			return errors.New("then: exec with an empty command")
		}
		opts.Log.Info("running the container's preStop", "exec", h.Exec.Command)
		cmd := exec.CommandContext(ctx, h.Exec.Command[0], h.Exec.Command[1:]...)
		cmd.Stdout, cmd.Stderr = opts.Stdout, opts.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("then: exec %q: %w", h.Exec.Command, err)
		}
		return nil
	case h.HTTPGet != nil:
		return httpGet(ctx, h.HTTPGet, podIP, opts)
	case h.Sleep != nil:
		opts.Log.Info("running the container's preStop", "sleep", h.Sleep.Seconds)
		sleep(ctx, time.Duration(h.Sleep.Seconds)*time.Second)
		return nil
	}
	return errors.New("then: handler has no exec, httpGet or sleep action")
}

func httpGet(ctx context.Context, g *contract.HTTPGetAction, podIP netip.Addr, opts Options) error {
	// Named ports are container ports the helper cannot see; the webhook
	// resolves them before rendering the hook.
	port, ok := g.Port.Number()
	if !ok {
		return fmt.Errorf("then: httpGet port %q is not a number", g.Port)
	}
	host := g.Host
	if host == "" {
		host = "127.0.0.1"
		if podIP.IsValid() {
			host = podIP.String()
		}
	}
	scheme := strings.ToLower(g.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("then: httpGet: %w", err)
	}
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	opts.Log.Info("running the container's preStop", "httpGet", url)
	client := &http.Client{Transport: &http.Transport{
		// Like the kubelet: a hook to the pod itself does not verify its certificate.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("then: httpGet %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= http.StatusBadRequest {
		return fmt.Errorf("then: httpGet %s: %s", url, resp.Status)
	}
	return nil
}
