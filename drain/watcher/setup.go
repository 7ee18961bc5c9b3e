package watcher

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/drain/watcher/endpoint"
	"github.com/albdrain/albdrain/drain/watcher/hold"
	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/drain/watcher/targetgroups"
	"github.com/albdrain/albdrain/drain/watcher/unheld"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// EventSource is the reporting controller of the events the watcher records on pods.
const EventSource = "albdrain-watcher"

// Limits for DeregisterTargets (early deregistration): well under the load
// balancer controller's 4/s, burst 20, which the account shares.
const (
	changeRate  = 1
	changeBurst = 5
)

// minTagRelist is how soon target-group tags may be listed again for a pod
// that matched none, in case its target group is new.
const minTagRelist = 30 * time.Second

// Option changes how Setup builds the watcher; for tests and embedding.
type Option func(*options)

type options struct {
	awsConfig    *aws.Config
	awsOptional  bool
	metrics      *metrics.Metrics
	resolverInto *targetgroups.Resolver
}

// ResolverInto stores the watcher's target-group resolver in r, for the
// manager's explain endpoint to answer as the watcher would.
func ResolverInto(r *targetgroups.Resolver) Option { return func(o *options) { o.resolverInto = r } }

// WithAWSConfig uses cfg instead of the SDK's default configuration chain
// (environment, IRSA, EKS Pod Identity, instance metadata).
func WithAWSConfig(cfg aws.Config) Option { return func(o *options) { o.awsConfig = &cfg } }

// AWSOptional lets the watcher start without a usable AWS configuration,
// for installs whose pods hold in sleep mode: a pod that overrides its mode
// to wait then falls back to the helper's fixed sleep, since every ELBv2
// call fails at once.
func AWSOptional() Option { return func(o *options) { o.awsOptional = true } }

// WithMetrics records into m instead of the collectors registered on
// controller-runtime's registry.
func WithMetrics(m *metrics.Metrics) Option { return func(o *options) { o.metrics = m } }

// PodCacheSelector selects the pods the watcher reads: those the webhook
// marked as managed. The manager's cache must hold no others.
func PodCacheSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{contract.ManagedLabel: "true"})
}

// PodCacheByObject is the manager cache setting for Pods the watcher relies
// on: only managed pods, trimmed (TrimPod), so the cache stays small on
// large clusters. Put it in cache.Options.ByObject under &corev1.Pod{}.
func PodCacheByObject() cache.ByObject {
	return cache.ByObject{Label: PodCacheSelector(), Transform: TrimPod}
}

// Setup adds the watcher to mgr: the hold endpoint (served by every
// replica, no leader election), its readiness check, and the informers it
// reads. finder is the manager's lbc.Finder, shared with the webhook. Call it
// before mgr.Start.
func Setup(mgr ctrl.Manager, cfg Config, finder *lbc.Finder, opts ...Option) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("drain config: %w", err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	m := o.metrics
	if m == nil {
		m = metrics.Default()
	}
	awsCfg, err := loadAWSConfig(context.Background(), o.awsConfig, cfg.AWSRegion)
	if err != nil {
		if !o.awsOptional {
			return err
		}
		mgr.GetLogger().Info("starting without AWS: sleep-mode holds need none; a pod overriding its mode to wait falls back to a fixed sleep", "reason", err.Error())
		awsCfg = withoutAWS(cfg.AWSRegion, err)
	}
	api := elbv2.NewClient(awsCfg, elbv2.ClientOptions{
		Endpoint:    cfg.AWSEndpointURL,
		CallTimeout: cfg.AWSCallTimeout,
		Describe:    rate.NewLimiter(rate.Limit(cfg.APIRate), cfg.APIBurst),
		Change:      rate.NewLimiter(changeRate, changeBurst),
		Metrics:     m,
	})

	resolver := newResolver(mgr, cfg, finder, api)
	if o.resolverInto != nil {
		*o.resolverInto = resolver
	}
	// The pod informer is registered now so that it starts, and syncs, with
	// the manager's cache: the hold server starts only after that, and never
	// reads a cold cache.
	if _, err := mgr.GetCache().GetInformer(context.Background(), &corev1.Pod{}, cache.BlockUntilSynced(false)); err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}

	h := &hold.Holder{
		Resolver:      resolver,
		Delays:        &targetgroups.Delays{API: api, MaxAge: cfg.DiscoveryRefresh},
		Settings:      &targetgroups.Settings{API: api, MaxAge: cfg.DiscoveryRefresh},
		Poller:        elbv2.NewPoller(api, cfg.PollInterval, m),
		Recorder:      mgr.GetEventRecorder(EventSource),
		Metrics:       m,
		Policy:        cfg.ReleasePolicy,
		Settle:        cfg.SettleTime,
		FallbackAfter: cfg.FallbackAfter,
		Margin:        cfg.HoldMargin,
		Marker:        hold.PodMarker{Client: mgr.GetClient()},
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
	})
	if err := mgr.Add(srv); err != nil {
		return err
	}
	// The helper's failures to reach this endpoint show nowhere else.
	unasked := &unheld.Reporter{Events: mgr.GetCache(), Recorder: mgr.GetEventRecorder(EventSource), Metrics: m}
	if err := unasked.Setup(context.Background(), mgr); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("albdrain-hold-server", srv.ReadyCheck)
}

// newResolver discovers through TargetGroupBindings while the cluster
// serves the CRD, and through target-group tags otherwise; the CRD may be
// installed while the manager runs.
func newResolver(mgr ctrl.Manager, cfg Config, finder *lbc.Finder, api *awselbv2.Client) targetgroups.Resolver {
	if !finder.Served.Has(lbc.APITargetGroupBinding) && cfg.ClusterName == "" {
		mgr.GetLogger().Info("no TargetGroupBinding CRD and no --cluster-name: until the CRD is installed, only the v1 ingress controller's target-group tags can be matched")
	}
	return targetgroups.Either{
		Use:      func() bool { return finder.Served.Has(lbc.APITargetGroupBinding) },
		Bindings: targetgroups.Bindings{Finder: finder},
		Tags: &targetgroups.Tags{
			API:     api,
			Finder:  finder,
			Cluster: cfg.ClusterName,
			MaxAge:  cfg.DiscoveryRefresh,
			MinAge:  min(cfg.DiscoveryRefresh, minTagRelist),
		},
	}
}
