package lbc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Config is the load balancer controller's settings albdrain must mirror,
// and how often it looks for newly installed CRDs.
type Config struct {
	// DefaultTargetType mirrors the LBC's --default-target-type.
	DefaultTargetType string
	// APIDiscoveryInterval is how often APIs not yet served are looked for.
	APIDiscoveryInterval time.Duration
}

// NewConfig returns a Config with the defaults, the ones BindFlags sets.
func NewConfig() Config {
	var c Config
	c.BindFlags(flag.NewFlagSet("defaults", flag.ContinueOnError))
	return c
}

// BindFlags registers the flags with their defaults.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DefaultTargetType, "default-target-type", string(TargetTypeInstance),
		"the load balancer controller's --default-target-type (instance or ip): target type of Ingresses, NLB Services and Gateway backends that name none")
	fs.DurationVar(&c.APIDiscoveryInterval, "api-discovery-interval", 30*time.Second,
		"how often to look for TargetGroupBinding and Gateway API CRDs installed after start-up")
}

// Validate checks the flags.
func (c *Config) Validate() error {
	var errs []error
	if c.DefaultTargetType != string(TargetTypeIP) && c.DefaultTargetType != string(TargetTypeInstance) {
		errs = append(errs, fmt.Errorf("--default-target-type %q: want ip or instance", c.DefaultTargetType))
	}
	if c.APIDiscoveryInterval <= 0 {
		errs = append(errs, fmt.Errorf("--api-discovery-interval %s: want a positive duration", c.APIDiscoveryInterval))
	}
	return errors.Join(errs...)
}

// NewFinder registers the Finder's indexes and informers with mgr's cache
// and returns a Finder reading through it, for both the webhook and the
// watcher. Call it once per manager, before the manager starts: the cache
// then syncs these objects before any webhook or hold is served. Optional
// APIs found now are on from the start; those installed later are turned on
// by a runnable added to mgr, once their informers have synced.
func NewFinder(ctx context.Context, mgr ctrl.Manager, cfg Config) (*Finder, error) {
	if err := AddToScheme(mgr.GetScheme()); err != nil {
		return nil, err
	}
	if err := RegisterIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	for _, o := range []client.Object{&corev1.Service{}, &networkingv1.Ingress{}, &networkingv1.IngressClass{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, o); err != nil {
			return nil, fmt.Errorf("informer for %T: %w", o, err)
		}
	}
	d := &discovery{mgr: mgr, served: &APISet{}, interval: cfg.APIDiscoveryInterval}
	if err := d.discover(ctx); err != nil {
		return nil, err
	}
	ctrl.LoggerFrom(ctx).Info("load balancer controller APIs", "served", d.served.List())
	if err := mgr.Add(d); err != nil {
		return nil, err
	}
	return &Finder{Reader: mgr.GetClient(), Served: d.served, DefaultTargetType: TargetType(cfg.DefaultTargetType)}, nil
}

// discovery turns on the optional APIs as the cluster comes to serve them.
type discovery struct {
	mgr      ctrl.Manager
	served   *APISet
	interval time.Duration
}

var _ manager.LeaderElectionRunnable = (*discovery)(nil)

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// replica answers admissions and holds.
func (d *discovery) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (d *discovery) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("api-discovery")
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for len(d.served.List()) < len(AllAPIs) {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := d.discover(ctx); err != nil {
			// A failed discovery leaves the rules off; the next tick retries.
			log.Error(err, "looking for load balancer controller APIs")
		}
	}
	return nil
}

// discover turns on every optional API the cluster now serves.
func (d *discovery) discover(ctx context.Context) error {
	for _, a := range AllAPIs {
		if d.served.Has(a) || (a.needs() != "" && !d.served.Has(a.needs())) {
			continue
		}
		ok, err := d.serves(a)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		if err := d.enable(ctx, a); err != nil {
			return err
		}
		ctrl.LoggerFrom(ctx).Info("load balancer controller API served; its rules are on", "api", a)
	}
	return nil
}

func (d *discovery) serves(a API) (bool, error) {
	for _, gvk := range a.kinds() {
		_, err := d.mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		switch {
		case meta.IsNoMatchError(err):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("discover %s: %w", gvk, err)
		}
	}
	return true, nil
}

// enable registers an API's indexes and informers and, once the informers
// have synced (at once before the manager starts, which syncs the cache
// before serving), turns its rules on.
func (d *discovery) enable(ctx context.Context, a API) error {
	for _, i := range a.indexes() {
		if err := d.mgr.GetFieldIndexer().IndexField(ctx, i.Object, i.Field, i.Extract); err != nil {
			return fmt.Errorf("index %T by %s: %w", i.Object, i.Field, err)
		}
	}
	for _, o := range a.objects() {
		if _, err := d.mgr.GetCache().GetInformer(ctx, o); err != nil {
			return fmt.Errorf("informer for %T: %w", o, err)
		}
	}
	d.served.add(a)
	return nil
}
