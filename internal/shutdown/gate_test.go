package shutdown

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// waitOut is an Endpoints the test drives: it says when the gate starts
// waiting, and the replica leaves the endpoints when out is closed.
type waitOut struct {
	waiting chan struct{}
	out     chan struct{}
	err     chan error
}

func newWaitOut() *waitOut {
	return &waitOut{waiting: make(chan struct{}, 1), out: make(chan struct{}), err: make(chan error, 1)}
}

func (w *waitOut) WaitOut(ctx context.Context) error {
	w.waiting <- struct{}{}
	select {
	case <-w.out:
		w.err <- nil
		return nil
	case <-ctx.Done():
		w.err <- ctx.Err()
		return ctx.Err()
	}
}

// replica is a real HTTP server standing for the manager's webhook and
// hold servers: it serves until the context start is given ends.
type replica struct {
	url   string
	start func(context.Context) error
}

func newReplica(t *testing.T) *replica {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "admitted")
	})}
	t.Cleanup(func() { srv.Close() })
	return &replica{url: "http://" + ln.Addr().String(), start: func(ctx context.Context) error {
		go func() { _ = srv.Serve(ln) }()
		<-ctx.Done()
		return srv.Shutdown(context.Background())
	}}
}

// serves reports whether the replica answers a request on a new connection.
func (r *replica) serves() bool {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(r.url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body) == "admitted"
}

func enabled() Config {
	return Config{Service: "albdrain", Namespace: "albdrain-system", PodIP: "10.0.0.1", EndpointsTimeout: time.Minute}
}

func run(ctx context.Context, g *Gate, r *replica) chan error {
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, r.start) }()
	return done
}

// TestServesUntilOutOfEndpoints checks the order of a stop: from SIGTERM
// the replica is not ready but still serves; it stops once out of its
// Service's endpoints.
func TestServesUntilOutOfEndpoints(t *testing.T) {
	r := newReplica(t)
	eps := newWaitOut()
	g := NewGate(enabled(), eps)
	sigterm, signal := context.WithCancel(context.Background())
	done := run(sigterm, g, r)

	// The listener is open before Run starts serving it: the kernel holds
	// this connection until then.
	if !r.serves() {
		t.Fatal("the replica does not serve")
	}
	if err := g.ReadyCheck(nil); err != nil {
		t.Errorf("ready check before SIGTERM: %v", err)
	}
	select {
	case <-g.Stopping():
		t.Fatal("Stopping closed before SIGTERM")
	default:
	}
	signal()
	<-eps.waiting
	if g.ReadyCheck(nil) == nil {
		t.Error("ready check passes after SIGTERM")
	}
	// The parts others rely on hear of the stop now, while the replica
	// still serves, not when the manager stops.
	select {
	case <-g.Stopping():
	default:
		t.Error("Stopping not closed while the replica waits to leave its endpoints")
	}
	if !r.serves() {
		t.Error("the replica stopped serving while still an endpoint of its Service")
	}
	select {
	case err := <-done:
		t.Fatalf("stopped while still an endpoint: %v", err)
	default:
	}
	close(eps.out)
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if r.serves() {
		t.Error("the replica still serves after the gate let it stop")
	}
}

// TestEndpointsTimeoutBoundsTheWait checks that a replica its Service
// never lets go (no permission to read the slices, a stuck controller)
// still stops.
func TestEndpointsTimeoutBoundsTheWait(t *testing.T) {
	r := newReplica(t)
	eps := newWaitOut()
	cfg := enabled()
	cfg.EndpointsTimeout = 50 * time.Millisecond
	sigterm, signal := context.WithCancel(context.Background())
	done := run(sigterm, NewGate(cfg, eps), r)
	signal()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := <-eps.err; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the wait for the endpoints ended with %v, want its deadline", err)
	}
	if r.serves() {
		t.Error("the replica still serves after the wait's bound")
	}
}

// TestManagerEndingDuringTheWait checks that a manager failing on its own
// while it waits to leave the endpoints returns its error at once.
func TestManagerEndingDuringTheWait(t *testing.T) {
	eps := newWaitOut()
	failed := errors.New("cache lost")
	fail := make(chan struct{})
	start := func(ctx context.Context) error {
		select {
		case <-fail:
			return failed
		case <-ctx.Done():
			return nil
		}
	}
	sigterm, signal := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewGate(enabled(), eps).Run(sigterm, start) }()
	signal()
	<-eps.waiting
	close(fail)
	if err := <-done; !errors.Is(err, failed) {
		t.Errorf("Run: %v, want the manager's error", err)
	}
}

// TestDisabledStopsAtOnce checks that a replica with no Service stops on
// SIGTERM without waiting for endpoints.
func TestDisabledStopsAtOnce(t *testing.T) {
	r := newReplica(t)
	eps := newWaitOut()
	sigterm, signal := context.WithCancel(context.Background())
	g := NewGate(Config{}, eps)
	done := run(sigterm, g, r)
	signal()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	<-g.Stopping() // closed with the manager's context
	if len(eps.waiting) != 0 {
		t.Error("a replica with no Service waited for its endpoints")
	}
}
