// Package cluster assembles a local stand-in for an EKS cluster behind an
// ALB, from real parts where it matters: kube-apiserver and etcd (envtest),
// kube-controller-manager as a subprocess, the ALB emulator driven through
// the real AWS SDK, albdrain's own manager, plus stand-ins for the kubelet
// and scheduler (package kubelet) and for the AWS Load Balancer Controller
// (package lbc). Everything listens and connects on loopback only.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
)

// AlbdrainAppID is the application ID albdrain's ELBv2 client puts in its
// User-Agent; the load balancer controller's calls carry
// fakelbc.UserAgent, as the real controller's do.
const AlbdrainAppID = "albdrain"

// Timings are the cluster's time constants, compressed from AWS's so a
// rollout takes seconds, with their proportions kept: the ALB's data plane
// lags its API by more than the load balancer controller lags Kubernetes,
// and the deregistration delay outlasts both.
type Timings struct {
	// PropagationLag is how long the ALB keeps routing to a target after
	// its deregistration (and ignores a new one after registration), on
	// every node. Lag, when set, replaces it.
	PropagationLag time.Duration
	// Lag is the distribution each ALB node's lag is drawn from, seeded by
	// Seed; Nodes is how many ALB nodes there are (default 3).
	Lag   *albemu.LagModel
	Seed  uint64
	Nodes int
	// HealthCheckDraining keeps the ALB health-checking targets while they
	// drain; AWS does not document whether it does.
	HealthCheckDraining bool
	// DeregistrationDelay is the target groups' draining time.
	DeregistrationDelay time.Duration
	// HealthCheckInterval and HealthCheckTimeout are the target groups'
	// active health checks; UnhealthyThreshold failed checks in a row take
	// a target out of rotation.
	HealthCheckInterval, HealthCheckTimeout time.Duration
	UnhealthyThreshold                      int
	// LBCMinLag and LBCMaxLag bound the load balancer controller's reaction
	// to a Kubernetes change; LBCRequeue is its
	// --targetgroupbinding-requeue-duration, how long a binding waits to
	// read target health again while a readiness gate is not True.
	LBCMinLag, LBCMaxLag, LBCRequeue time.Duration
	// ServeTime is how long the application takes per request.
	ServeTime time.Duration
	// MaxHold, Fallback, QuietPeriod and ShutdownBudget are albdrain's
	// webhook settings for the preStop hold it injects.
	MaxHold, Fallback, QuietPeriod, ShutdownBudget time.Duration
	// WatcherPoll and HoldMargin are the watcher's poll interval and the
	// margin it adds to the deregistration delay to bound a hold.
	WatcherPoll, HoldMargin time.Duration
}

// DefaultTimings are the scenarios' timings: propagation lag 1.5s, a load
// balancer controller that adds no lag to its own reaction (measured
// against the real one: fakelbc.MeasuredReal) and re-reads target health
// for readiness gates every 1.5s (its 15s requeue, compressed tenfold like
// FieldTimings), deregistration delay
// 4s, health checks every 500ms. As with AWS's defaults (2 failures 30s apart), failed health
// checks notice a stopped pod later than a deregistration propagates, so
// they do not hide the race.
func DefaultTimings() Timings {
	return Timings{
		PropagationLag:      1500 * time.Millisecond,
		DeregistrationDelay: 4 * time.Second,
		HealthCheckInterval: 500 * time.Millisecond,
		HealthCheckTimeout:  250 * time.Millisecond,
		UnhealthyThreshold:  5,
		LBCMinLag:           fakelbc.DefaultMinLag,
		LBCMaxLag:           fakelbc.DefaultMaxLag,
		LBCRequeue:          fakelbc.DefaultRequeue / 10,
		ServeTime:           10 * time.Millisecond,
		MaxHold:             30 * time.Second,
		Fallback:            10 * time.Second,
		QuietPeriod:         time.Second,
		ShutdownBudget:      5 * time.Second,
		WatcherPoll:         250 * time.Millisecond,
		HoldMargin:          3 * time.Second,
	}
}

// FieldTimings are DefaultTimings with field-like lags, compressed about
// tenfold: each of 3 ALB nodes draws its lag from a heavy-tailed lognormal
// (median 2s, p99 10s, at most 15s), as controller users report 15-60s
// lags whose tail dwarfs the median. The deregistration delay (20s) outlasts
// the longest lag, as AWS advises, and the hold bound follows it.
func FieldTimings() Timings {
	t := DefaultTimings()
	lag, err := albemu.ParseLag(FieldLag)
	if err != nil {
		panic(err) // a constant
	}
	t.Lag, t.Nodes = &lag, 3
	t.DeregistrationDelay = 20 * time.Second
	t.MaxHold = 45 * time.Second
	return t
}

// FieldLag is FieldTimings' lag model.
const FieldLag = "lognormal:median=2s,p99=10s,max=15s"

// LagModel is the lag model the emulator draws from under these timings.
func (t Timings) LagModel() albemu.LagModel {
	if t.Lag != nil {
		return *t.Lag
	}
	return albemu.ConstantLag(t.PropagationLag)
}

// Options configure Start.
type Options struct {
	// Dir receives the components' kubeconfigs, certificates and logs.
	Dir string
	// HelperBinary is the built albdrain-hold; the kubelet runs it where
	// pods' preStop hooks name contract.HelperPath.
	HelperBinary string
	Timings      Timings
	// Log receives the stand-ins' logs; default discards.
	Log *slog.Logger
}

// Cluster is the running assembly.
type Cluster struct {
	Env      *kubetest.Env
	Emulator *albemu.Emulator
	Kubelet  *kubelet.Kubelet
	Albdrain *Albdrain

	stops []func() error
}

// Start brings the whole cluster up, albdrain included. On failure it stops
// whatever it had started.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	t := opts.Timings
	c := &Cluster{}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
		}
	}()

	wh, err := WebhookConfiguration()
	if err != nil {
		return nil, err
	}
	env, stopEnv, err := kubetest.Run(kubetest.WithTargetGroupBindingCRD(), kubetest.WithGatewayCRDs(), kubetest.WithMutatingWebhooks(wh))
	if err != nil {
		return nil, err
	}
	c.Env = env
	c.stops = append(c.stops, stopEnv)

	cm, err := StartControllerManager(env, opts.Dir)
	if err != nil {
		return nil, err
	}
	c.stops = append(c.stops, cm.Stop)

	if c.Emulator, err = albemu.New(albemu.Options{
		PropagationLag:             t.PropagationLag,
		Lag:                        t.Lag,
		Seed:                       t.Seed,
		Nodes:                      t.Nodes,
		HealthCheckDraining:        t.HealthCheckDraining,
		ConnectTimeout:             time.Second,
		IdleTimeout:                10 * time.Second,
		DefaultDeregistrationDelay: t.DeregistrationDelay,
		DefaultHealthCheck: albemu.HealthCheck{
			Interval: t.HealthCheckInterval, Timeout: t.HealthCheckTimeout, HealthyThreshold: 2, UnhealthyThreshold: t.UnhealthyThreshold,
		},
	}); err != nil {
		return nil, fmt.Errorf("ALB emulator: %w", err)
	}
	c.stops = append(c.stops, c.Emulator.Close)

	if c.Kubelet, err = kubelet.Start(ctx, env.Config, kubelet.Options{
		Executables: map[string]string{contract.HelperPath: opts.HelperBinary},
		ServeTime:   t.ServeTime,
		Log:         opts.Log.With("component", "kubelet"),
	}); err != nil {
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	c.stops = append(c.stops, func() error { c.Kubelet.Stop(); return nil })

	lbcELB, lbcEC2 := fakelbc.Clients(c.Emulator.URL())
	lbcCtl, err := fakelbc.Start(ctx, env.Config, fakelbc.Options{
		ELBv2:    lbcELB,
		EC2:      lbcEC2,
		MinLag:   t.LBCMinLag,
		MaxLag:   t.LBCMaxLag,
		Requeue:  t.LBCRequeue,
		Log:      opts.Log.With("component", "lbc"),
		Gateways: true,
	})
	if err != nil {
		return nil, fmt.Errorf("load balancer controller: %w", err)
	}
	c.stops = append(c.stops, func() error { lbcCtl.Stop(); return nil })

	if c.Albdrain, err = newAlbdrain(ctx, env, opts.Dir, t, c.awsConfig(AlbdrainAppID), c.Emulator.URL()); err != nil {
		return nil, err
	}
	if err := c.Albdrain.Start(ctx); err != nil {
		return nil, err
	}
	c.stops = append(c.stops, c.Albdrain.Stop)
	return c, nil
}

// Stop stops every component, newest first.
func (c *Cluster) Stop() error {
	var errs []error
	for i := len(c.stops) - 1; i >= 0; i-- {
		errs = append(errs, c.stops[i]())
	}
	c.stops = nil
	return errors.Join(errs...)
}

// awsConfig is an SDK configuration for the emulator: static credentials
// (the emulator ignores signatures) and the SDK's standard retryer.
func (c *Cluster) awsConfig(appID string) aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEMULATOR", "emulator-secret", ""),
		AppID:       appID,
	}
}

// IsLBCCall reports whether an AWS call came from the load balancer
// controller rather than from albdrain: by the User-Agent the real
// controller sends (fakelbc.UserAgentPrefix).
func IsLBCCall(call albemu.Call) bool {
	return strings.HasPrefix(call.UserAgent, fakelbc.UserAgentPrefix)
}
