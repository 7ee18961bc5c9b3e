// Package lbc stands in for the AWS Load Balancer Controller's
// TargetGroupBinding reconciler for ip targets. For each binding it registers
// the pods behind the bound Service port in the target group through the
// ELBv2 API (the real SDK, pointed at the ALB emulator) and deregisters the
// ones that stop serving or terminate, each change a reconcile lag after
// Kubernetes reported it, as the real controller is never instant. It also
// sets the readiness-gate conditions target-health.elbv2.k8s.aws/<binding>
// from DescribeTargetHealth, True once the target is healthy, and after
// each successful reconcile writes status.observedGeneration, as the real
// controller does.
//
// Like the real controller, it registers a pod whose endpoint is not ready
// when the pod carries the binding's readiness gate and its containers are
// ready: the gate waits for the target to be healthy, so registration cannot
// wait for the gate.
//
// It shares no code with albdrain: it resolves Services, ports and targets
// on its own, so a mistake in albdrain's resolution shows up as a mismatch
// in the scenarios instead of being mirrored here.
package fakelbc

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/lbc"
)

// API is the part of the ELBv2 client the controller uses.
type API interface {
	DescribeTargetHealth(ctx context.Context, in *elbv2.DescribeTargetHealthInput, optFns ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
	RegisterTargets(ctx context.Context, in *elbv2.RegisterTargetsInput, optFns ...func(*elbv2.Options)) (*elbv2.RegisterTargetsOutput, error)
	DeregisterTargets(ctx context.Context, in *elbv2.DeregisterTargetsInput, optFns ...func(*elbv2.Options)) (*elbv2.DeregisterTargetsOutput, error)
	DescribeTargetGroups(ctx context.Context, in *elbv2.DescribeTargetGroupsInput, optFns ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error)
	DescribeTags(ctx context.Context, in *elbv2.DescribeTagsInput, optFns ...func(*elbv2.Options)) (*elbv2.DescribeTagsOutput, error)
}

// Options configure the controller.
type Options struct {
	// ELBv2 is the client it registers targets with.
	ELBv2 API
	// MinLag and MaxLag bound the reconcile lag: each change is acted on
	// after a delay drawn uniformly between them.
	MinLag, MaxLag time.Duration
	// HealthPoll is how often a binding is reconciled again while some of
	// its gated pods are not yet healthy.
	HealthPoll time.Duration
	// Log receives the controller's log; default discards.
	Log *slog.Logger
	// Gateways makes it also reconcile HTTPRoutes on ALB Gateways into
	// TargetGroupBindings; the cluster must serve the Gateway API and the
	// controller's gateway CRDs.
	Gateways bool
	// EndpointSlices reads targets from the Services' EndpointSlices, as the
	// real controller does, instead of from the pods. It needs pods with
	// addresses the EndpointSlice controller publishes: a real node's.
	EndpointSlices bool
}

// Controller is a running stand-in. Create it with Start.
type Controller struct {
	opts   Options
	cache  cache.Cache
	client client.Client
	queue  workqueue.TypedDelayingInterface[types.NamespacedName]
	routes workqueue.TypedRateLimitingInterface[types.NamespacedName]
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex
	rng *rand.Rand
}

// workers is how many bindings are reconciled at once.
const workers = 2

// Start runs the controller until Stop.
func Start(ctx context.Context, cfg *rest.Config, opts Options) (*Controller, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxLag < opts.MinLag {
		return nil, fmt.Errorf("reconcile lag: max %s below min %s", opts.MaxLag, opts.MinLag)
	}
	if opts.HealthPoll <= 0 {
		return nil, fmt.Errorf("health poll interval must be positive")
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 100, 200
	scheme := kubetest.NewScheme()
	ca, err := cache.New(cfg, cache.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme, Cache: &client.CacheOptions{Reader: ca}})
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Controller{
		opts: opts, cache: ca, client: cl, cancel: cancel,
		queue:  workqueue.NewTypedDelayingQueue[types.NamespacedName](),
		routes: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName]()),
		rng:    rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	handlers := map[client.Object]func(client.Object){
		&lbc.TargetGroupBinding{}: func(o client.Object) { c.enqueue(types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}) },
		&corev1.Pod{}:             func(o client.Object) { c.enqueueNamespace(cctx, o.GetNamespace()) },
		&corev1.Service{}:         func(o client.Object) { c.enqueueNamespace(cctx, o.GetNamespace()) },
	}
	if opts.Gateways {
		// Routes are reconciled after the lag too; the configuration they
		// depend on is created with them in the scenarios.
		handlers[&gwv1.HTTPRoute{}] = func(o client.Object) {
			c.routes.AddAfter(types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}, c.lag())
		}
		handlers[&gwv1.Gateway{}] = func(o client.Object) { c.enqueueRoutes(cctx, o.GetNamespace()) }
		handlers[&lbc.TargetGroupConfiguration{}] = func(o client.Object) { c.enqueueRoutes(cctx, o.GetNamespace()) }
		if _, err := ca.GetInformer(cctx, &gwv1.GatewayClass{}); err != nil {
			cancel()
			return nil, err
		}
	}
	if opts.EndpointSlices {
		handlers[&discoveryv1.EndpointSlice{}] = func(o client.Object) { c.enqueueNamespace(cctx, o.GetNamespace()) }
	}
	for obj, h := range handlers {
		inf, err := ca.GetInformer(cctx, obj)
		if err != nil {
			cancel()
			return nil, err
		}
		if _, err := inf.AddEventHandler(eventHandler(h)); err != nil {
			cancel()
			return nil, err
		}
	}
	c.wg.Go(func() {
		if err := ca.Start(cctx); err != nil {
			opts.Log.Error("cache stopped", "err", err)
		}
	})
	if !ca.WaitForCacheSync(ctx) {
		cancel()
		c.wg.Wait()
		return nil, fmt.Errorf("load balancer controller cache did not sync: %w", ctx.Err())
	}
	for range workers {
		c.wg.Go(func() { c.work(cctx) })
	}
	c.wg.Go(func() { c.workRoutes(cctx) })
	return c, nil
}

// enqueueRoutes schedules every HTTPRoute of a namespace, whose Gateway or
// configuration may have changed.
func (c *Controller) enqueueRoutes(ctx context.Context, ns string) {
	var routes gwv1.HTTPRouteList
	if err := c.cache.List(ctx, &routes, client.InNamespace(ns)); err != nil {
		c.opts.Log.Error("list HTTPRoutes", "namespace", ns, "err", err)
		return
	}
	for _, r := range routes.Items {
		c.routes.AddAfter(types.NamespacedName{Namespace: ns, Name: r.Name}, c.lag())
	}
}

func (c *Controller) workRoutes(ctx context.Context) {
	for {
		key, shutdown := c.routes.Get()
		if shutdown {
			return
		}
		if err := c.reconcileRoute(ctx, key); err != nil && ctx.Err() == nil {
			c.opts.Log.Info("route reconcile failed; retrying", "route", key, "err", err)
			c.routes.AddRateLimited(key)
		} else {
			c.routes.Forget(key)
		}
		c.routes.Done(key)
	}
}

// Stop ends the controller and waits for its reconciles to finish.
func (c *Controller) Stop() {
	c.cancel()
	c.queue.ShutDown()
	c.routes.ShutDown()
	c.wg.Wait()
}

func eventHandler(h func(client.Object)) toolscache.ResourceEventHandler {
	on := func(obj any) {
		if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if o, ok := obj.(client.Object); ok {
			h(o)
		}
	}
	return toolscache.ResourceEventHandlerFuncs{AddFunc: on, UpdateFunc: func(_, obj any) { on(obj) }, DeleteFunc: on}
}

// lag draws one reconcile lag.
func (c *Controller) lag() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts.MinLag + time.Duration(c.rng.Int64N(int64(c.opts.MaxLag-c.opts.MinLag)+1))
}

// enqueue schedules a binding's reconcile after the lag. A binding already
// waiting keeps its earlier time, so bursts of events coalesce.
func (c *Controller) enqueue(key types.NamespacedName) { c.queue.AddAfter(key, c.lag()) }

// enqueueNamespace schedules every binding of a namespace: pods and Services
// are few per namespace in the scenarios, so finding the precise bindings
// would save nothing.
func (c *Controller) enqueueNamespace(ctx context.Context, ns string) {
	var tgbs lbc.TargetGroupBindingList
	if err := c.cache.List(ctx, &tgbs, client.InNamespace(ns)); err != nil {
		c.opts.Log.Error("list TargetGroupBindings", "namespace", ns, "err", err)
		return
	}
	for _, tgb := range tgbs.Items {
		c.enqueue(types.NamespacedName{Namespace: ns, Name: tgb.Name})
	}
}

func (c *Controller) work(ctx context.Context) {
	for {
		key, shutdown := c.queue.Get()
		if shutdown {
			return
		}
		requeue, err := c.reconcile(ctx, key)
		c.queue.Done(key)
		switch {
		case err != nil && ctx.Err() == nil:
			c.opts.Log.Info("reconcile failed; retrying", "binding", key, "err", err)
			c.queue.AddAfter(key, c.opts.HealthPoll)
		case requeue:
			c.queue.AddAfter(key, c.opts.HealthPoll)
		}
	}
}
