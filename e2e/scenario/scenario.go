// Package scenario runs the end-to-end scenarios on a local cluster (package
// cluster): a Deployment behind an ALB ip target group, steady client
// traffic through the emulated ALB, and a disruption (a rolling restart, a
// scale-down, evictions, a watcher restart mid-rollout), under one of three
// protections: none, a fixed preStop sleep, or albdrain. A Result holds
// every request, every pod termination and the ELBv2 calls made, for the
// tests' assertions and the demo's report.
package scenario

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/load"
)

// Protection is how the application is protected against the ALB race.
type Protection string

// The protections compared.
const (
	// Baseline is no protection: the namespace is not opted in to albdrain
	// and pods have no preStop.
	Baseline Protection = "baseline"
	// FixedSleep is the usual remedy: a native preStop sleep of a guessed length.
	FixedSleep Protection = "fixed-sleep"
	// Albdrain is the namespace opted in: the webhook injects the hold and
	// the watcher ends it when the ALB is done with the pod.
	Albdrain Protection = "albdrain"
)

// Action is the disruption a scenario causes.
type Action string

// The disruptions.
const (
	// RollingRestart restarts the Deployment, as `kubectl rollout restart` does.
	RollingRestart Action = "rolling-restart"
	// ScaleDown scales the Deployment down to one replica.
	ScaleDown Action = "scale-down"
	// Evict evicts every pod through the Eviction API under a
	// PodDisruptionBudget, retrying refusals, as `kubectl drain` does.
	Evict Action = "evict"
	// WatcherRestart is a rolling restart during which albdrain's manager
	// is restarted while a pod's hold is in progress.
	WatcherRestart Action = "watcher-restart"
)

// Frontend is how the load balancer controller comes to register the pods.
type Frontend string

// The frontends.
const (
	// Binding is a TargetGroupBinding the user made for the Service.
	Binding Frontend = ""
	// Gateway is an HTTPRoute on an ALB Gateway with an ip
	// TargetGroupConfiguration: the controller makes the binding itself,
	// after the pods exist.
	Gateway Frontend = "gateway"
	// NLB is a TargetGroupBinding to a TCP target group behind a Network
	// Load Balancer: every client connection is a flow, and the clients
	// renew theirs every nlbRequestsPerFlow requests.
	NLB Frontend = "nlb"
)

// nlbWorkers and nlbRequestsPerFlow shape the clients through an NLB:
// each flow carries a few requests and lives about a quarter of a second,
// so flows open steadily (about 30 a second per pod) while others carry
// requests. The helper judges an NLB's silence by the new flows it sees,
// sampling every 200 ms (a flow shorter than that is often missed), and a
// few of them are no proof of how often they come: a pod that saw only a
// handful is held to its bound. So the scenario runs more clients, each
// sending less, at the same total rate.
const (
	nlbWorkers         = 24
	nlbRequestsPerFlow = 2
)

// Spec is one scenario run.
type Spec struct {
	Protection Protection
	Action     Action
	// Frontend is how the load balancer reaches the Service; default a
	// TargetGroupBinding.
	Frontend Frontend
	// Replicas is the Deployment's size; default 3.
	Replicas int32
	// FixedSleep is the preStop sleep under the FixedSleep protection.
	FixedSleep time.Duration
	// ReleasePolicy, under the Albdrain protection, is the watcher's
	// release policy for this run; empty keeps the running one. The
	// manager is restarted with it before the run and after.
	ReleasePolicy string
	// Rate, when set, is the traffic in requests per second per pod,
	// instead of the default steady traffic of about 150-200 requests a
	// second in all.
	Rate float64
	// Poisson has the clients' requests arrive as a Poisson process, as a
	// service's many independent clients send them, instead of at fixed
	// intervals.
	Poisson bool
	// ServeTime, when set, draws how long the application works on each
	// client request (load.Options.ServeTime); the health checks are not
	// slowed.
	ServeTime load.Durations
	// DeregistrationDelay, when set, is the target group's, instead of the
	// cluster's default.
	DeregistrationDelay time.Duration
	// Progress, when set, receives a line at each step and while traffic flows.
	Progress func(string)
	// Timeout bounds the run; default 3 minutes.
	Timeout time.Duration
}

// Result is what a run observed.
type Result struct {
	Spec      Spec
	Namespace string
	// TargetGroupArn is the workload's target group in the emulator.
	TargetGroupArn string
	// Start and End delimit the traffic.
	Start, End time.Time
	// Requests are the clients' requests, in start order.
	Requests []load.Result
	Summary  load.Summary
	// Terminations are the run's pods' terminations, in the order they ended.
	Terminations []kubelet.Termination
	// Calls are the ELBv2 API calls made while traffic flowed.
	Calls []albemu.Call
	// Routed are the emulator's records of the requests it routed for the
	// run, with the target each went to.
	Routed []albemu.RequestRecord
	// Stops are the emulator's ground truth of each terminated pod's
	// deregistration, by pod name: when each ALB node stopped routing new
	// requests to it.
	Stops map[string]albemu.Stop
	// Albdrain is what albdrain recorded; nil for other protections.
	Albdrain *AlbdrainRecord
	// TerminatingAtRestart counts pods terminating when the watcher restarted.
	TerminatingAtRestart int
}

// LBCCalls counts the load balancer controller's calls among Calls.
func (r *Result) LBCCalls() int {
	n := 0
	for _, c := range r.Calls {
		if cluster.IsLBCCall(c) {
			n++
		}
	}
	return n
}

// Holds are the pods' hold times, one per terminated pod (zero without a
// preStop hook).
func (r *Result) Holds() []time.Duration {
	out := make([]time.Duration, len(r.Terminations))
	for i, t := range r.Terminations {
		out[i] = t.Hold()
	}
	return out
}

// trafficFor is the traffic of a run: the default, or Rate requests per
// second per pod spread over the same workers.
func trafficFor(spec Spec) load.Options {
	opts := traffic
	if spec.Rate > 0 {
		total := spec.Rate * float64(spec.Replicas)
		opts.Interval = time.Duration(float64(opts.Workers) / total * float64(time.Second))
	}
	if spec.Frontend == NLB {
		opts.Interval = opts.Interval * nlbWorkers / time.Duration(opts.Workers) // the same total rate
		opts.Workers, opts.RequestsPerConnection = nlbWorkers, nlbRequestsPerFlow
	}
	opts.Poisson, opts.ServeTime = spec.Poisson, spec.ServeTime
	return opts
}

// warmupFor is how many requests flow before the disruption: the default,
// or about two seconds' worth at a custom rate.
func warmupFor(spec Spec) int {
	if spec.Rate > 0 {
		return min(warmup, max(10, int(2*spec.Rate*float64(spec.Replicas))))
	}
	return warmup
}

// runSeq numbers runs so each gets fresh names.
var runSeq atomic.Int64

// Traffic: four clients, each sending a request every 20ms, about 150-200
// requests a second, bounded well above what any run needs.
var traffic = load.Options{
	Workers:     4,
	Interval:    20 * time.Millisecond,
	MaxRequests: 100_000,
	MaxDuration: 5 * time.Minute,
	Timeout:     15 * time.Second,
}

// warmup is how many requests flow before the disruption, so the timeline
// shows the steady state first.
const warmup = 200

// Run carries out one scenario on c.
func Run(ctx context.Context, c *cluster.Cluster, spec Spec) (*Result, error) {
	if spec.Replicas == 0 {
		spec.Replicas = 3
	}
	if spec.Timeout == 0 {
		spec.Timeout = 3 * time.Minute
	}
	if spec.Protection == FixedSleep && spec.FixedSleep < time.Second {
		return nil, fmt.Errorf("fixed sleep %s: the native sleep action counts whole seconds", spec.FixedSleep)
	}
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	seq := runSeq.Add(1)
	r := &runner{c: c, spec: spec, seq: seq, ns: fmt.Sprintf("%s-%s-%d", spec.Action, spec.Protection, seq)}
	res, err := r.run(ctx, plan{disrupt: r.disrupt})
	if err != nil {
		return res, fmt.Errorf("%s/%s in namespace %s: %w", spec.Action, spec.Protection, r.ns, err)
	}
	return res, nil
}

// progress reports a step.
func (r *runner) progress(format string, args ...any) {
	if r.spec.Progress != nil {
		r.spec.Progress(strings.TrimSpace(fmt.Sprintf(format, args...)))
	}
}
