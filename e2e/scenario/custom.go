package scenario

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/load"
)

// Custom is a scenario under albdrain whose disruption the caller scripts,
// for the fault tests: the same workload, traffic and records as Run, with
// Disrupt free to inject faults, kill components and act on the Deployment
// through the Steps it is handed.
type Custom struct {
	// Name names the run; its namespace is derived from it.
	Name string
	// Replicas is the Deployment's size; default 3.
	Replicas int32
	// Workload, when set, changes the Deployment before it is created.
	Workload func(*appsv1.Deployment)
	// Disrupt runs once the traffic has warmed up and returns once its
	// disruption is over; the run then waits for the rollout and the ALB to
	// settle, as Run does.
	Disrupt func(ctx context.Context, s *Steps) error
	// UnrecordedHolds says some holds end without the watcher recording an
	// outcome (it was down), so the record is taken without waiting for an
	// outcome event per terminated pod.
	UnrecordedHolds bool
	// Progress, when set, receives a line at each step and while traffic flows.
	Progress func(string)
	// Timeout bounds the run; default 4 minutes.
	Timeout time.Duration
}

// Steps are what a Custom disruption can do to its run.
type Steps struct{ r *runner }

// Namespace is the run's namespace.
func (s *Steps) Namespace() string { return s.r.ns }

// TargetGroupARN is the workload's target group in the ALB emulator.
func (s *Steps) TargetGroupARN() string { return s.r.arn }

// Pods lists the workload's pods.
func (s *Steps) Pods(ctx context.Context) ([]corev1.Pod, error) { return s.r.pods(ctx) }

// RollingRestart restarts the Deployment, as `kubectl rollout restart` does.
func (s *Steps) RollingRestart(ctx context.Context) error {
	s.Progressf("rolling restart of deployment/%s", appName)
	return s.r.restartDeployment(ctx)
}

// Scale sets the Deployment's replicas.
func (s *Steps) Scale(ctx context.Context, n int32) error {
	s.Progressf("scaling deployment/%s to %d", appName, n)
	return s.r.updateDeployment(ctx, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To(n) })
}

// DeletePod deletes one pod gracefully, as `kubectl delete pod` does.
func (s *Steps) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	s.Progressf("deleting pod %s", pod.Name)
	return s.r.c.Env.Client.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})
}

// WaitSettled waits until the Deployment has rolled out and the ALB routes
// to exactly its serving pods.
func (s *Steps) WaitSettled(ctx context.Context) error { return s.r.waitSettled(ctx) }

// Events counts the events on the namespace's pods by reason.
func (s *Steps) Events(ctx context.Context) (map[string]int, error) { return s.r.events(ctx) }

// HoldStarted reports whether the watcher has recorded a HoldStarted event.
func (s *Steps) HoldStarted(ctx context.Context) (bool, error) { return s.r.holdStarted(ctx) }

// Terminations are the namespace's pod terminations so far.
func (s *Steps) Terminations() []kubelet.Termination {
	var out []kubelet.Termination
	for _, t := range s.r.c.Kubelet.Terminations() {
		if t.Namespace == s.r.ns {
			out = append(out, t)
		}
	}
	return out
}

// Poll waits for cond, checked every 100ms, until the run's deadline.
func (s *Steps) Poll(ctx context.Context, what string, cond wait.ConditionWithContextFunc) error {
	return poll(ctx, what, cond)
}

// Progressf reports a step.
func (s *Steps) Progressf(format string, args ...any) { s.r.progress(format, args...) }

// RunCustom carries out a custom scenario on c.
func RunCustom(ctx context.Context, c *cluster.Cluster, spec Custom) (*Result, error) {
	if spec.Replicas == 0 {
		spec.Replicas = 3
	}
	if spec.Timeout == 0 {
		spec.Timeout = 4 * time.Minute
	}
	if spec.Disrupt == nil {
		return nil, errors.New("custom scenario without a disruption")
	}
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	seq := runSeq.Add(1)
	r := &runner{
		c:    c,
		spec: Spec{Protection: Albdrain, Action: Action(spec.Name), Replicas: spec.Replicas, Progress: spec.Progress, Timeout: spec.Timeout},
		seq:  seq,
		ns:   fmt.Sprintf("%s-%d", spec.Name, seq),
	}
	res, err := r.runCustom(ctx, spec)
	if err != nil {
		return res, fmt.Errorf("%s in namespace %s: %w", spec.Name, r.ns, err)
	}
	return res, nil
}

// runCustom is run with the setup's workload and the disruption given.
func (r *runner) runCustom(ctx context.Context, spec Custom) (*Result, error) {
	res := &Result{Spec: r.spec, Namespace: r.ns}
	before, err := snapshotMetrics()
	if err != nil {
		return res, err
	}
	listener, err := r.setupWorkload(ctx, spec.Workload)
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
		err = spec.Disrupt(ctx, &Steps{r})
	}
	if err == nil {
		r.progress("waiting for the rollout and the ALB to settle")
		err = r.waitSettled(ctx)
	}
	stopReporting()
	res.Requests = tr.Stop()
	res.End = time.Now()
	res.Summary = load.Summarize(res.Requests)
	res.Terminations = (&Steps{r}).Terminations()
	for _, call := range r.c.Emulator.Calls() {
		if !call.Time.Before(res.Start) && !call.Time.After(res.End) {
			res.Calls = append(res.Calls, call)
		}
	}
	if err == nil {
		expect := len(res.Terminations)
		if spec.UnrecordedHolds {
			expect = 0
		}
		res.Albdrain, err = r.albdrainRecord(ctx, before, expect)
	}
	r.progress("done: %d requests, %d failed", res.Summary.Requests, res.Summary.Errors)
	return res, err
}

// setupWorkload is setup with the Deployment changed by workload first.
func (r *runner) setupWorkload(ctx context.Context, workload func(*appsv1.Deployment)) (*albemu.Listener, error) {
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
	dep := deployment(r.ns, r.spec.Replicas, Albdrain, 0)
	if workload != nil {
		workload(dep)
	}
	for _, o := range []client.Object{namespace(r.ns, Albdrain), service(r.ns), binding(r.ns, arn), dep} {
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
