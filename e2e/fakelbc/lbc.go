// Package fakelbc stands in for the AWS Load Balancer Controller's
// TargetGroupBinding reconciler for ip targets (v3:
// controllers/elbv2.targetGroupBindingReconciler over
// pkg/targetgroupbinding.defaultResourceManager). For each binding it
// registers the Service's endpoints in the target group through the ELBv2
// API (the real SDK, pointed at the ALB emulator), sets the pods'
// readiness-gate conditions target-health.elbv2.k8s.aws/<binding> from the
// target health it caches, and writes status.observedGeneration only when a
// reconcile ends without a requeue. Each file names the controller function
// it follows; what still differs is listed in the README ("What runs for
// real, and what is a stand-in").
//
// It shares no code with albdrain: it resolves Services, ports and targets
// on its own, so a mistake in albdrain's resolution shows up as a mismatch
// in the scenarios instead of being mirrored here.
package fakelbc

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/lbc"
)

// API is the part of the ELBv2 client the controller uses.
type API interface {
	DescribeTargetHealth(ctx context.Context, in *awselbv2.DescribeTargetHealthInput, optFns ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetHealthOutput, error)
	RegisterTargets(ctx context.Context, in *awselbv2.RegisterTargetsInput, optFns ...func(*awselbv2.Options)) (*awselbv2.RegisterTargetsOutput, error)
	DeregisterTargets(ctx context.Context, in *awselbv2.DeregisterTargetsInput, optFns ...func(*awselbv2.Options)) (*awselbv2.DeregisterTargetsOutput, error)
	DescribeTargetGroups(ctx context.Context, in *awselbv2.DescribeTargetGroupsInput, optFns ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetGroupsOutput, error)
	DescribeTags(ctx context.Context, in *awselbv2.DescribeTagsInput, optFns ...func(*awselbv2.Options)) (*awselbv2.DescribeTagsOutput, error)
}

// EC2API is the part of the EC2 client the controller uses.
type EC2API interface {
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeVpcs(ctx context.Context, in *ec2.DescribeVpcsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
}

// Defaults the controller ships with.
const (
	// DefaultRequeue is --targetgroupbinding-requeue-duration.
	DefaultRequeue = 15 * time.Second
	// DefaultTargetsCacheTTL is targetgroupbinding.defaultTargetsCacheTTL.
	DefaultTargetsCacheTTL = 5 * time.Minute
	// DefaultClusterName is the cluster the stand-in says it runs in.
	DefaultClusterName = "albdrain-e2e"
	// workers is --targetgroupbinding-max-concurrent-reconciles' default.
	workers = 3
	// maxBackoff is --targetgroupbinding-max-exponential-backoff-delay's
	// default: failed reconciles retry from 5ms up to it.
	maxBackoff = 1000 * time.Second
)

// Options configure the controller.
type Options struct {
	// ELBv2 is the client it registers targets with; EC2 the one it reads
	// security groups and the VPC with.
	ELBv2 API
	EC2   EC2API
	// ClusterName and VPCID are --cluster-name and --aws-vpc-id; defaults
	// DefaultClusterName and albemu.DefaultVPCID.
	ClusterName, VPCID string
	// MinLag and MaxLag bound the reaction lag: each event is acted on
	// after a delay drawn uniformly between them, on top of the stand-in's
	// own reaction. The default (DefaultMinLag, DefaultMaxLag) is none,
	// as measured against the real controller (MeasuredReal); a test may
	// add one to model a loaded controller.
	MinLag, MaxLag time.Duration
	// Requeue is --targetgroupbinding-requeue-duration: how long a binding
	// waits before its target health is read again while a readiness gate
	// is not True (default DefaultRequeue).
	Requeue time.Duration
	// MaxBackoff is --targetgroupbinding-max-exponential-backoff-delay:
	// the longest wait before a failed reconcile is retried (default 1000s).
	// A test that ends an ELBv2 fault and needs the controller back at once
	// sets it, as an operator may.
	MaxBackoff time.Duration
	// TargetsCacheTTL is how long healthy targets are taken from the cache
	// without asking ELBv2 (default DefaultTargetsCacheTTL).
	TargetsCacheTTL time.Duration
	// Log receives the controller's log; default discards.
	Log *slog.Logger
	// Gateways makes it also reconcile HTTPRoutes on ALB Gateways into
	// TargetGroupBindings; the cluster must serve the Gateway API and the
	// controller's gateway CRDs.
	Gateways bool
	// EndpointSlices reads endpoints from the Services' EndpointSlices, as
	// the real controller does, instead of deriving them from the pods. It
	// needs pods with addresses the EndpointSlice controller publishes: a
	// real node's.
	EndpointSlices bool

	// observe, when set, is told the outcome of every reconcile: this
	// package's tests wait on it instead of on time.
	observe func(key types.NamespacedName, requeue bool, err error)
}

// Controller is a running stand-in. Create it with Start.
type Controller struct {
	opts     Options
	cache    cache.Cache
	client   client.Client
	events   record.EventRecorder
	queue    workqueue.TypedRateLimitingInterface[types.NamespacedName]
	routes   workqueue.TypedRateLimitingInterface[types.NamespacedName]
	targets  *targetsCache
	network  *network
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopSink func()

	mu  sync.Mutex
	rng *rand.Rand
}

// Start runs the controller until Stop.
func Start(ctx context.Context, cfg *rest.Config, opts Options) (*Controller, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxLag < opts.MinLag {
		return nil, fmt.Errorf("reaction lag: max %s below min %s", opts.MaxLag, opts.MinLag)
	}
	if opts.ELBv2 == nil || opts.EC2 == nil {
		return nil, fmt.Errorf("load balancer controller needs an ELBv2 and an EC2 client")
	}
	if opts.Requeue <= 0 {
		opts.Requeue = DefaultRequeue
	}
	if opts.TargetsCacheTTL <= 0 {
		opts.TargetsCacheTTL = DefaultTargetsCacheTTL
	}
	if opts.ClusterName == "" {
		opts.ClusterName = DefaultClusterName
	}
	if opts.VPCID == "" {
		opts.VPCID = albemu.DefaultVPCID
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
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := ca.IndexField(cctx, &lbc.TargetGroupBinding{}, indexServiceRef, func(o client.Object) []string {
		return []string{o.(*lbc.TargetGroupBinding).Spec.ServiceRef.Name}
	}); err != nil {
		cancel()
		return nil, err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(cctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	c := &Controller{
		opts: opts, cache: ca, client: cl, cancel: cancel, stopSink: broadcaster.Shutdown,
		events: broadcaster.NewRecorder(scheme, corev1.EventSource{Component: "targetGroupBinding"}),
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](
			5*time.Millisecond, cmp.Or(opts.MaxBackoff, maxBackoff))),
		routes:  workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName]()),
		targets: newTargetsCache(opts.ELBv2, opts.TargetsCacheTTL),
		network: &network{ec2: opts.EC2, cluster: opts.ClusterName, vpc: opts.VPCID},
		rng:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	handlers := map[client.Object]func(ctx context.Context, old, obj client.Object){
		&lbc.TargetGroupBinding{}: func(_ context.Context, _, o client.Object) { c.enqueue(client.ObjectKeyFromObject(o)) },
		&corev1.Pod{}:             c.onPod,
		&corev1.Service{}:         c.onService,
		&corev1.Node{}:            c.onNode,
	}
	if opts.EndpointSlices {
		handlers[&discoveryv1.EndpointSlice{}] = c.onEndpointSlice
	}
	if opts.Gateways {
		// Routes are reconciled after the lag too; the configuration they
		// depend on is created with them in the scenarios.
		handlers[&gwv1.HTTPRoute{}] = func(_ context.Context, _, o client.Object) {
			c.routes.AddAfter(client.ObjectKeyFromObject(o), c.lag())
		}
		handlers[&gwv1.Gateway{}] = func(ctx context.Context, _, o client.Object) { c.enqueueRoutes(ctx, o.GetNamespace()) }
		handlers[&lbc.TargetGroupConfiguration{}] = func(ctx context.Context, _, o client.Object) { c.enqueueRoutes(ctx, o.GetNamespace()) }
		if _, err := ca.GetInformer(cctx, &gwv1.GatewayClass{}); err != nil {
			cancel()
			return nil, err
		}
	}
	for obj, h := range handlers {
		inf, err := ca.GetInformer(cctx, obj)
		if err != nil {
			cancel()
			return nil, err
		}
		if _, err := inf.AddEventHandler(eventHandler(cctx, h)); err != nil {
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
	c.stopSink()
}

// eventHandler calls h with the object before (nil on create) and after
// the change (before, on delete).
func eventHandler(ctx context.Context, h func(ctx context.Context, old, obj client.Object)) toolscache.ResourceEventHandler {
	obj := func(o any) client.Object {
		if tomb, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
			o = tomb.Obj
		}
		co, _ := o.(client.Object)
		return co
	}
	call := func(old, o client.Object) {
		if o != nil {
			h(ctx, old, o)
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { call(nil, obj(o)) },
		UpdateFunc: func(old, o any) { call(obj(old), obj(o)) },
		DeleteFunc: func(o any) { call(nil, obj(o)) },
	}
}

// lag draws one reaction lag.
func (c *Controller) lag() time.Duration {
	if c.opts.MaxLag == 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts.MinLag + time.Duration(c.rng.Int64N(int64(c.opts.MaxLag-c.opts.MinLag)+1))
}

// enqueue schedules a binding's reconcile after the reaction lag. A binding
// already waiting keeps its earlier time, so bursts of events coalesce.
func (c *Controller) enqueue(key types.NamespacedName) {
	if d := c.lag(); d > 0 {
		c.queue.AddAfter(key, d)
		return
	}
	c.queue.Add(key)
}

// work runs reconciles as controller-runtime does: an error retries with
// exponential backoff, a requested requeue after Options.Requeue.
func (c *Controller) work(ctx context.Context) {
	for {
		key, shutdown := c.queue.Get()
		if shutdown {
			return
		}
		requeue, err := c.reconcile(ctx, key)
		switch {
		case err != nil && ctx.Err() == nil:
			c.opts.Log.Info("reconcile failed; retrying", "binding", key, "err", err)
			c.queue.AddRateLimited(key)
		case requeue:
			c.queue.Forget(key)
			c.queue.AddAfter(key, c.opts.Requeue)
		default:
			c.queue.Forget(key)
		}
		c.queue.Done(key)
		if c.opts.observe != nil {
			c.opts.observe(key, requeue, err)
		}
	}
}
