package shutdown

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Endpoints tells when the replica has left its Service's ready endpoints.
type Endpoints interface {
	// WaitOut returns nil once the replica is no longer a ready endpoint
	// of its Service, or ctx's error if ctx ends first.
	WaitOut(ctx context.Context) error
}

// Gate puts the replica's stop in order; see the package doc.
type Gate struct {
	cfg       Config
	endpoints Endpoints
	stopping  atomic.Bool
	// stopped is closed, once, when the stop begins.
	stopped  chan struct{}
	stopOnce sync.Once
}

// NewGate returns a Gate for cfg that learns from endpoints when the
// replica is out of its Service.
func NewGate(cfg Config, endpoints Endpoints) *Gate {
	return &Gate{cfg: cfg, endpoints: endpoints, stopped: make(chan struct{})}
}

// Stopping is closed when the replica's stop begins (SIGTERM), while it
// still serves: parts that others rely on (the replicas' shared polling)
// hand their work back then, not when the manager stops.
func (g *Gate) Stopping() <-chan struct{} { return g.stopped }

func (g *Gate) begin() {
	g.stopping.Store(true)
	g.stopOnce.Do(func() { close(g.stopped) })
}

// ReadyCheck fails from SIGTERM on, for the manager's readyz: the
// EndpointSlice controller then marks the replica not ready even where the
// pod's own deletion did not (a replica told to stop some other way).
func (g *Gate) ReadyCheck(*http.Request) error {
	if g.stopping.Load() {
		return errors.New("stopping")
	}
	return nil
}

// Run calls start (a manager's Start) and, once ctx ends (SIGTERM), keeps
// it running while the replica is a ready endpoint of its Service, for at
// most EndpointsTimeout, then for Settle, and only then ends start's
// context. It returns start's error, at once if start ends on its own.
func (g *Gate) Run(ctx context.Context, start func(context.Context) error) error {
	if !g.cfg.Enabled() {
		stop := context.AfterFunc(ctx, g.begin)
		defer stop()
		return start(ctx)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- start(runCtx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	g.begin()
	logger := log.FromContext(ctx).WithName("shutdown").WithValues("service", g.cfg.Service, "podIP", g.cfg.PodIP)
	logger.Info("stopping: not ready, serving until out of the Service's endpoints", "within", g.cfg.Total())

	began := time.Now()
	waitCtx, cancelWait := context.WithTimeout(runCtx, g.cfg.EndpointsTimeout)
	defer cancelWait()
	out := make(chan error, 1)
	go func() { out <- g.endpoints.WaitOut(waitCtx) }()
	select {
	case err := <-done:
		return err
	case err := <-out:
		if err != nil {
			logger.Info("still an endpoint, or cannot tell; stopping anyway", "after", time.Since(began), "err", err)
		} else {
			logger.Info("out of the Service's endpoints; settling", "after", time.Since(began), "settle", g.cfg.Settle)
		}
	}
	settle := time.NewTimer(g.cfg.Settle)
	defer settle.Stop()
	select {
	case err := <-done:
		return err
	case <-settle.C:
	}
	logger.Info("stopping the manager", "grace", g.cfg.Grace)
	stop()
	return <-done
}
