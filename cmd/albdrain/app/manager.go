package app

import (
	"context"
	"crypto/tls"
	"fmt"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/albdrain/albdrain/certs/tlspolicy"
	"github.com/albdrain/albdrain/drain/watcher"
	"github.com/albdrain/albdrain/internal/explain"
	"github.com/albdrain/albdrain/internal/explain/serve"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/shutdown"
	"github.com/albdrain/albdrain/webhook"
	"github.com/albdrain/albdrain/webhook/gates"
)

// NewManager builds the manager with albdrain's webhook and watcher added.
// Its Start stops in the order of package shutdown once its context ends:
// out of the Service's endpoints first, then the manager's own graceful
// shutdown, bounded by cfg.Shutdown.Grace. The facts the manager's parts
// share are stated here once: the certificate directory, the cache policy
// (CacheOptions), the AWS configuration and ELBv2 client, the target-group
// resolver and the collectors.
func NewManager(ctx context.Context, rc *rest.Config, cfg Config, opts Options) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	m, err := opts.Process.metrics()
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(rc, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: cfg.MetricsAddr},
		HealthProbeBindAddress: cfg.ProbeAddr,
		// What is left once the replica is out of its Service's endpoints:
		// in-flight admissions finish, holds are answered "retry".
		GracefulShutdownTimeout: &cfg.Shutdown.Grace,
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Port:    cfg.Webhook.Port,
			CertDir: cfg.Webhook.CertDir,
			TLSOpts: []func(*tls.Config){tlspolicy.Apply},
		}),
		Cache: CacheOptions(),
		// Managers of one process (tests) repeat their controllers' names.
		Controller: config.Controller{SkipNameValidation: ptr.To(opts.Process != nil)},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	gate := shutdown.NewGate(cfg.Shutdown, shutdown.NewSliceWatch(cfg.Shutdown, mgr.GetConfig(), mgr.GetHTTPClient(), scheme, mgr.GetRESTMapper()))
	if err := setupCerts(ctx, mgr, &cfg, opts.Process); err != nil {
		return nil, fmt.Errorf("set up certificates: %w", err)
	}
	// One Finder, its indexes and informers, answers both the webhook and the
	// watcher: which ip target groups serve a pod.
	finder, err := lbc.NewFinder(ctx, mgr, cfg.LBC)
	if err != nil {
		return nil, fmt.Errorf("set up load balancer controller lookups: %w", err)
	}
	if err := webhook.Setup(ctx, mgr, cfg.Webhook, finder, m.Webhook); err != nil {
		return nil, fmt.Errorf("set up webhook: %w", err)
	}
	if err := gates.Setup(mgr, cfg.Gates, m.Gates); err != nil {
		return nil, fmt.Errorf("set up readiness-gate reporter: %w", err)
	}
	api, err := newELBv2(ctx, mgr.GetLogger(), cfg, opts.AWS, m.Watcher)
	if err != nil {
		return nil, err
	}
	// One resolver answers the watcher and explain alike.
	resolver := watcher.NewResolver(mgr.GetLogger(), cfg.Drain, finder, api)
	if err := watcher.Setup(mgr, cfg.drainConfig(), watcher.Deps{ELBv2: api, Resolver: resolver, Metrics: m.Watcher, Stopping: gate.Stopping()}); err != nil {
		return nil, fmt.Errorf("set up drain watcher: %w", err)
	}
	// Served beside the webhook, so the apiserver's service proxy reaches it
	// on the Service's webhook port; any pod reaches it too, hence its own
	// authentication and rate limit.
	mgr.GetWebhookServer().Register(explain.Path, &serve.Handler{Pods: mgr.GetAPIReader(), Finder: finder, Resolver: resolver,
		Auth: serve.Reviews{Client: mgr.GetClient()}, Limit: rate.NewLimiter(serve.Rate, serve.Burst)})
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("shutdown", gate.ReadyCheck); err != nil {
		return nil, err
	}
	return &gatedManager{Manager: mgr, gate: gate}, nil
}

// gatedManager is a manager whose Start stops through a shutdown.Gate.
type gatedManager struct {
	ctrl.Manager
	gate *shutdown.Gate
}

// Start runs the manager until ctx ends and the gate lets it stop.
func (m *gatedManager) Start(ctx context.Context) error { return m.gate.Run(ctx, m.Manager.Start) }
