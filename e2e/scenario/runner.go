package scenario

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/load"
)

// runner is one run in progress.
type runner struct {
	c    *cluster.Cluster
	spec Spec
	ns   string
	seq  int64
	arn  string
}

// plan is what varies between runs: the workload, its disruption, and what
// the watcher's records should show.
type plan struct {
	// workload, when set, changes the Deployment before it is created.
	workload func(*appsv1.Deployment)
	// disrupt runs once the traffic has warmed up.
	disrupt func(ctx context.Context, res *Result) error
	// unrecordedHolds: some holds end without the watcher recording an
	// outcome (see Custom.UnrecordedHolds).
	unrecordedHolds bool
}

// run sets the workload up, runs traffic through the ALB while p's
// disruption happens, waits for everything to settle and collects the
// records.
func (r *runner) run(ctx context.Context, p plan) (_ *Result, err error) {
	res := &Result{Spec: r.spec, Namespace: r.ns}
	if p := r.spec.ReleasePolicy; p != "" && r.spec.Protection == Albdrain {
		if was := r.c.Albdrain.ReleasePolicy(); was != p {
			r.progress("restarting albdrain with --release-policy=%s", p)
			if err := r.c.Albdrain.RestartWith(ctx, "--release-policy="+p); err != nil {
				return res, err
			}
			defer func() {
				err = errors.Join(err, r.c.Albdrain.RestartWith(context.WithoutCancel(ctx), "--release-policy="+was))
			}()
		}
	}
	// Taken before the pods exist, so their admissions count in the run.
	before, err := snapshotMetrics()
	if err != nil {
		return res, err
	}
	listener, err := r.setup(ctx, p.workload)
	if err != nil {
		return res, fmt.Errorf("setting up: %w", err)
	}
	defer listener.Close()
	res.TargetGroupArn = r.arn
	opts := trafficFor(r.spec)
	opts.URL = "http://" + listener.Addr()
	res.Start = time.Now()
	tr, err := load.Start(ctx, opts)
	if err != nil {
		return res, err
	}
	stopReporting := r.reportProgress(tr, res.Start)
	err = waitRequests(ctx, tr, warmupFor(r.spec))
	if err == nil {
		err = p.disrupt(ctx, res)
	}
	if err == nil {
		r.progress("waiting for the rollout and the ALB to settle")
		err = r.waitSettled(ctx)
	}
	stopReporting()
	res.Requests = tr.Stop()
	res.End = time.Now()
	res.Summary = load.Summarize(res.Requests)
	res.Terminations = r.terminations()
	for _, call := range r.c.Emulator.Calls() {
		if !call.Time.Before(res.Start) && !call.Time.After(res.End) {
			res.Calls = append(res.Calls, call)
		}
	}
	r.groundTruth(res)
	if err == nil && r.spec.Protection == Albdrain {
		expect := len(res.Terminations)
		if p.unrecordedHolds {
			expect = 0
		}
		res.Albdrain, err = r.albdrainRecord(ctx, before, expect)
	}
	r.progress("done: %d requests, %d failed", res.Summary.Requests, res.Summary.Errors)
	return res, err
}

// lbListener is the load balancer's listener the clients connect to: an
// ALB's or an NLB's.
type lbListener interface {
	Addr() string
	Close() error
}

// addListener adds the listener of the run's frontend to the target group.
func (r *runner) addListener(arn string) (lbListener, error) {
	if r.spec.Frontend == NLB {
		return r.c.Emulator.AddNLBListener(arn, "")
	}
	return r.c.Emulator.AddListener(arn, "")
}

// setup creates the namespace, the target group and its listener, and the
// workload (changed by workload, when set), and waits until every replica
// serves through the load balancer.
func (r *runner) setup(ctx context.Context, workload func(*appsv1.Deployment)) (lbListener, error) {
	r.progress("creating namespace %s (%s)", r.ns, r.spec.Protection)
	protocol := "HTTP"
	if r.spec.Frontend == NLB {
		protocol = "TCP"
	}
	arn, err := r.c.Emulator.CreateTargetGroup(albemu.TargetGroupSpec{
		Name:     fmt.Sprintf("e2e-web-%d", r.seq),
		Port:     podPort,
		Protocol: protocol,
		Tags:     map[string]string{"elbv2.k8s.aws/cluster": "e2e", "ingress.k8s.aws/resource": r.ns + "/" + appName + ":80"},
		// Zero means the cluster's default.
		DeregistrationDelay: r.spec.DeregistrationDelay,
	})
	if err != nil {
		return nil, fmt.Errorf("target group: %w", err)
	}
	r.arn = arn
	listener, err := r.addListener(arn)
	if err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	objs := []client.Object{namespace(r.ns, r.spec.Protection), service(r.ns)}
	if r.spec.Frontend == Gateway {
		if err := ensureGatewayClass(ctx, r.c.Env.Client); err != nil {
			return nil, errors.Join(err, listener.Close())
		}
		objs = append(objs, gatewayObjects(r.ns)...)
	} else {
		objs = append(objs, binding(r.ns, arn))
	}
	if err := r.create(ctx, objs...); err != nil {
		return nil, errors.Join(err, listener.Close())
	}
	if r.spec.Frontend != Gateway {
		// As on a cluster, the controller has reconciled the binding before
		// the workload's pods exist, so they get its readiness gate, and a
		// hold resumed by another replica knows they were registered.
		if err := fakelbc.WaitReconciled(ctx, r.c.Env.Client, client.ObjectKey{Namespace: r.ns, Name: bindingName}); err != nil {
			return nil, errors.Join(fmt.Errorf("binding reconciled: %w", err), listener.Close())
		}
	}
	dep := deployment(r.ns, r.spec.Replicas, r.spec.Protection, int64(r.spec.FixedSleep/time.Second))
	if workload != nil {
		workload(dep)
	}
	objs = []client.Object{dep}
	if r.spec.Action == Evict {
		objs = append(objs, disruptionBudget(r.ns))
	}
	if err := r.create(ctx, objs...); err != nil {
		return nil, errors.Join(err, listener.Close())
	}
	r.progress("waiting for %d replicas to serve through the ALB", r.spec.Replicas)
	if err := r.waitSettled(ctx); err != nil {
		return nil, errors.Join(err, listener.Close())
	}
	return listener, nil
}

// groundTruth collects what the emulator knows of the run: the requests it
// routed for the run's target group and, for every terminated pod, when
// each node stopped routing to it.
func (r *runner) groundTruth(res *Result) {
	for _, rec := range r.c.Emulator.Requests() {
		if rec.TargetGroupArn == r.arn {
			res.Routed = append(res.Routed, rec)
		}
	}
	res.Stops = map[string]albemu.Stop{}
	for _, t := range res.Terminations {
		if s, ok := r.c.Emulator.TargetStop(r.arn, albemu.Target{ID: t.IP, Port: podPort}); ok {
			res.Stops[t.Name] = s
		}
	}
}

// reportProgress reports the traffic every second until stopped.
func (r *runner) reportProgress(tr *load.Run, start time.Time) (stop func()) {
	if r.spec.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				n, failed := tr.Counts()
				r.progress("  %5.1fs  %6d requests  %5d failed", time.Since(start).Seconds(), n, failed)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// waitRequests waits until n requests have completed.
func waitRequests(ctx context.Context, tr *load.Run, n int) error {
	return poll(ctx, "warm-up traffic", func(context.Context) (bool, error) {
		done, _ := tr.Counts()
		return done >= n, nil
	})
}

// terminations are the namespace's pod terminations so far.
func (r *runner) terminations() []kubelet.Termination {
	var out []kubelet.Termination
	for _, t := range r.c.Kubelet.Terminations() {
		if t.Namespace == r.ns {
			out = append(out, t)
		}
	}
	return out
}

func (r *runner) create(ctx context.Context, objs ...client.Object) error {
	for _, o := range objs {
		if err := r.c.Env.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}
