package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	drainwatcher "github.com/albdrain/albdrain/drain/watcher"
	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/ports"
	"github.com/albdrain/albdrain/internal/lbc"
)

// watcher is albdrain's drain watcher alone, in this process, with its own
// metrics: what the manager binary runs besides the webhook.
type watcher struct {
	holdURL string
	cancel  context.CancelFunc
	done    chan error
}

// startWatcher runs the watcher with cfg, its hold endpoint on a reserved
// loopback port over plain HTTP, and returns once the endpoint listens,
// which is after the manager's cache has synced.
func startWatcher(ctx context.Context, rc *rest.Config, cfg drainwatcher.Config, awsCfg aws.Config) (*watcher, error) {
	port, err := ports.Reserve()
	if err != nil {
		return nil, err
	}
	cfg.HoldAddr, cfg.CertDir = net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), ""
	rc = rest.CopyConfig(rc)
	// What the manager binary gets from ctrl.GetConfig.
	rc.QPS, rc.Burst = 20, 30
	mgr, err := ctrl.NewManager(rc, ctrl.Options{
		Scheme:                 kubetest.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  app.CacheOptions(),
	})
	if err != nil {
		return nil, err
	}
	finder, err := lbc.NewFinder(ctx, mgr, lbc.NewConfig())
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	api := elbv2.NewClient(awsCfg, cfg.ClientOptions(m))
	deps := drainwatcher.Deps{ELBv2: api, Resolver: drainwatcher.NewResolver(mgr.GetLogger(), cfg, finder, api), Metrics: m}
	if err := drainwatcher.Setup(mgr, cfg, deps); err != nil {
		return nil, err
	}
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w := &watcher{holdURL: "http://" + cfg.HoldAddr, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- mgr.Start(mctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", cfg.HoldAddr, time.Second)
		if err == nil {
			conn.Close()
			return w, nil
		}
		select {
		case err := <-w.done:
			cancel()
			return nil, fmt.Errorf("watcher exited: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, errors.Join(errors.New("watcher's hold endpoint did not listen within 60s"), w.stop())
		}
	}
}

func (w *watcher) stop() error {
	w.cancel()
	if err := <-w.done; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
