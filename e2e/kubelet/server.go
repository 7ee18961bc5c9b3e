package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/albdrain/albdrain/e2e/load"
)

// maxServeTime bounds the work a request may ask for.
const maxServeTime = time.Minute

// container is one running container: an HTTP server on each of its TCP
// container ports, standing in for the application.
type container struct {
	name    string
	servers []*http.Server
	serving sync.WaitGroup
}

// startContainer listens on ip at every TCP port of c and serves handler
// there. A port already taken fails the start and closes what was opened.
func startContainer(c corev1.Container, ip netip.Addr, handler http.Handler, log *slog.Logger) (*container, error) {
	ct := &container{name: c.Name}
	var listeners []net.Listener
	for _, p := range c.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(p.ContainerPort))))
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return nil, fmt.Errorf("container %s: %w", c.Name, err)
		}
		listeners = append(listeners, ln)
	}
	for _, ln := range listeners {
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		ct.servers = append(ct.servers, srv)
		ct.serving.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				// The container has crashed; the scenario sees its failed requests.
				log.Error("container stopped serving", "container", c.Name, "err", err)
			}
		})
	}
	return ct, nil
}

// stop is the application's reaction to SIGTERM: stop accepting (new
// connections are refused), close idle keep-alive connections, and let
// in-flight requests finish. When ctx ends first, the rest is cut off as by
// SIGKILL and killed is true.
func (ct *container) stop(ctx context.Context) (killed bool) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, srv := range ct.servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
				mu.Lock()
				killed = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ct.serving.Wait()
	return killed
}

// kill drops every connection at once, for a pod removed without grace.
func (ct *container) kill() {
	for _, srv := range ct.servers {
		srv.Close()
	}
	ct.serving.Wait()
}

// appHandler is the application every container runs: it answers each
// request after serveTime, the time a real handler spends working, so that
// requests are in flight when a pod stops, or after the time the request
// asks for in load.ServeTimeHeader (the clients' own distribution, which
// leaves the load balancer's health checks fast).
func appHandler(podName string, serveTime time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveTime := serveTime
		if d, err := time.ParseDuration(r.Header.Get(load.ServeTimeHeader)); err == nil && d > 0 {
			serveTime = min(d, maxServeTime)
		}
		if serveTime > 0 {
			t := time.NewTimer(serveTime)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, podName)
	})
}
