package scenario

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
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

func (r *runner) run(ctx context.Context) (*Result, error) {
	res := &Result{Spec: r.spec, Namespace: r.ns}
	// Taken before the pods exist, so their admissions count in the run.
	before, err := snapshotMetrics()
	if err != nil {
		return res, err
	}
	listener, err := r.setup(ctx)
	if err != nil {
		return res, fmt.Errorf("setting up: %w", err)
	}
	defer listener.Close()
	opts := traffic
	opts.URL = listener.URL()
	res.Start = time.Now()
	tr, err := load.Start(ctx, opts)
	if err != nil {
		return res, err
	}
	stopReporting := r.reportProgress(tr, res.Start)
	err = waitRequests(ctx, tr, warmup)
	if err == nil {
		err = r.disrupt(ctx, res)
	}
	if err == nil {
		r.progress("waiting for the rollout and the ALB to settle")
		err = r.waitSettled(ctx)
	}
	stopReporting()
	res.Requests = tr.Stop()
	res.End = time.Now()
	res.Summary = load.Summarize(res.Requests)
	for _, t := range r.c.Kubelet.Terminations() {
		if t.Namespace == r.ns {
			res.Terminations = append(res.Terminations, t)
		}
	}
	for _, call := range r.c.Emulator.Calls() {
		if !call.Time.Before(res.Start) && !call.Time.After(res.End) {
			res.Calls = append(res.Calls, call)
		}
	}
	if err == nil && r.spec.Protection == Albdrain {
		res.Albdrain, err = r.albdrainRecord(ctx, before, len(res.Terminations))
	}
	r.progress("done: %d requests, %d failed", res.Summary.Requests, res.Summary.Errors)
	return res, err
}

// setup creates the namespace, the target group and its listener, and the
// workload, and waits until every replica serves through the ALB.
func (r *runner) setup(ctx context.Context) (*albemu.Listener, error) {
	r.progress("creating namespace %s (%s)", r.ns, r.spec.Protection)
	arn, err := r.c.Emulator.CreateTargetGroup(albemu.TargetGroupSpec{
		Name: fmt.Sprintf("e2e-web-%d", r.seq),
		Port: podPort,
		Tags: map[string]string{"elbv2.k8s.aws/cluster": "e2e", "ingress.k8s.aws/resource": r.ns + "/" + appName + ":80"},
	})
	if err != nil {
		return nil, fmt.Errorf("target group: %w", err)
	}
	r.arn = arn
	listener, err := r.c.Emulator.AddListener(arn, "")
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
	objs = append(objs, deployment(r.ns, r.spec.Replicas, r.spec.Protection, int64(r.spec.FixedSleep/time.Second)))
	if r.spec.Action == Evict {
		objs = append(objs, disruptionBudget(r.ns))
	}
	for _, o := range objs {
		if err := r.c.Env.Client.Create(ctx, o); err != nil {
			return nil, errors.Join(fmt.Errorf("create %T %s: %w", o, o.GetName(), err), listener.Close())
		}
	}
	r.progress("waiting for %d replicas to serve through the ALB", r.spec.Replicas)
	if err := r.waitSettled(ctx); err != nil {
		return nil, errors.Join(err, listener.Close())
	}
	return listener, nil
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
