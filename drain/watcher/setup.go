package watcher

import (
	"context"
	"fmt"
	"time"

	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/drain/watcher/endpoint"
	"github.com/albdrain/albdrain/drain/watcher/hold"
	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/drain/watcher/targetgroups"
	"github.com/albdrain/albdrain/drain/watcher/unheld"
)

// warmEvery is how soon a new target group of managed pods is warmed, and
// warmShare the part of the Describe budget warming may spend: a node drain
// starting mid-round finds the rest of the budget for its polls.
const (
	warmEvery = 30 * time.Second
	warmShare = 0.2
)

// EventSource is the reporting controller of the events the watcher records on pods.
const EventSource = "albdrain-watcher"

// Deps are what the watcher shares with the rest of the manager, which
// builds each once (package app).
type Deps struct {
	// ELBv2 is the manager's rate-limited, measured client (elbv2.NewClient).
	ELBv2 *awselbv2.Client
	// Resolver finds a pod's registrations; explain answers with the same one.
	Resolver targetgroups.Resolver
	// Metrics are the watcher's collectors, which the manager registers.
	Metrics *metrics.Metrics
	// Stopping is closed when the replica's stop begins (shutdown.Gate);
	// nil when nothing tells it before the manager stops.
	Stopping <-chan struct{}
}

// Setup adds the watcher to mgr: the hold endpoint (served by every
// replica, no leader election), its readiness check, and the informers it
// reads. It relies on the manager's cache policy (package app): pods
// managed ones only, events the watcher's own (unheld.EventsByObject).
// Call it before mgr.Start.
func Setup(mgr ctrl.Manager, cfg Config, d Deps) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("drain config: %w", err)
	}
	api, m := d.ELBv2, d.Metrics
	// The pod informer is registered now so that it starts, and syncs, with
	// the manager's cache: the hold server starts only after that, and never
	// reads a cold cache.
	if _, err := mgr.GetCache().GetInformer(context.Background(), &corev1.Pod{}, cache.BlockUntilSynced(false)); err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}

	poller := elbv2.NewPoller(api, cfg.PollInterval, m)
	also, err := sharePolls(mgr, cfg, poller, d.Stopping)
	if err != nil {
		return err
	}
	delays := &targetgroups.Delays{API: api, MaxAge: cfg.DiscoveryRefresh}
	settings := &targetgroups.Settings{API: api, MaxAge: cfg.DiscoveryRefresh}
	h := &hold.Holder{
		Resolver:      d.Resolver,
		Delays:        delays,
		Settings:      settings,
		Poller:        poller,
		Recorder:      mgr.GetEventRecorder(EventSource),
		Metrics:       m,
		Policy:        cfg.ReleasePolicy,
		Settle:        cfg.SettleTime,
		FallbackAfter: cfg.FallbackAfter,
		Margin:        cfg.HoldMargin,
		Marker:        hold.PodMarker{Client: mgr.GetClient()},
		Ends:          &hold.EndEvents{Client: mgr.GetClient(), Controller: EventSource, Instance: hold.ReportingInstance(EventSource)},
	}
	if cfg.EarlyDeregister {
		h.EarlyDeregister = &elbv2.Batcher{API: api}
	}
	srv := endpoint.New(endpoint.Options{
		Addr:          cfg.HoldAddr,
		CertDir:       cfg.CertDir,
		Pods:          mgr.GetClient(),
		LivePods:      mgr.GetAPIReader(),
		Holder:        h,
		Tokens:        endpoint.Tokens{Client: mgr.GetClient()},
		Metrics:       m,
		MaxConcurrent: cfg.MaxConcurrentHolds,
		Log:           mgr.GetLogger(),
		Also:          also,
	})
	if err := mgr.Add(srv); err != nil {
		return err
	}
	// The warmer resolves through bindings only: through tags, every pod
	// in no group would relist the account's target groups each round.
	warmWith := d.Resolver
	if e, ok := d.Resolver.(targetgroups.Either); ok {
		warmWith = e.WithoutListing()
	}
	warmer := &targetgroups.Warmer{
		Pods: mgr.GetClient(), Resolver: warmWith, Delays: delays, Settings: settings,
		Every: warmEvery, Pace: rate.NewLimiter(rate.Limit(cfg.APIRate*warmShare), 1),
		Warm: func(n int) { m.TargetGroupsWarm.Set(float64(n)) },
	}
	if err := mgr.Add(warmer); err != nil {
		return err
	}
	// The helper's failures to reach this endpoint show nowhere else.
	unasked := &unheld.Reporter{Events: mgr.GetCache(), Recorder: mgr.GetEventRecorder(EventSource), Metrics: m}
	if err := unasked.Setup(context.Background(), mgr); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("albdrain-hold-server", srv.ReadyCheck)
}
