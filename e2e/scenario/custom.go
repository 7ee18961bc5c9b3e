package scenario

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	// Frontend, Rate, Poisson, ServeTime and DeregistrationDelay shape the
	// load balancer and the clients' traffic as Spec's do.
	Frontend            Frontend
	Rate                float64
	Poisson             bool
	ServeTime           load.Durations
	DeregistrationDelay time.Duration
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
func (s *Steps) Terminations() []kubelet.Termination { return s.r.terminations() }

// Poll waits for cond, checked every 100ms, until the run's deadline.
func (s *Steps) Poll(ctx context.Context, what string, cond wait.ConditionWithContextFunc) error {
	return poll(ctx, what, cond)
}

// InClusterClient is the address SendInCluster's clients connect from: a
// pod of the cluster's own, neither the node nor a load-balancer node.
var InClusterClient = netip.MustParseAddr("127.0.251.1")

// SendInCluster sends Poisson traffic at rate requests per second straight
// to pod's IP, as another pod of the cluster would, until ctx ends or the
// run is stopped. Its requests are not the load balancer's: the emulator
// neither routes nor records them.
func (s *Steps) SendInCluster(ctx context.Context, pod *corev1.Pod, rate float64) (*load.Run, error) {
	if pod.Status.PodIP == "" || rate <= 0 {
		return nil, fmt.Errorf("in-cluster traffic to pod %s: want a pod IP and a positive rate", pod.Name)
	}
	opts := traffic
	opts.Workers, opts.Poisson, opts.From = 1, true, InClusterClient
	opts.Interval = time.Duration(float64(time.Second) / rate)
	opts.URL = "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(podPort))
	s.Progressf("in-cluster traffic to pod %s at %g requests/s", pod.Name, rate)
	return load.Start(ctx, opts)
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
		c: c,
		spec: Spec{
			Protection: Albdrain, Action: Action(spec.Name), Replicas: spec.Replicas, Progress: spec.Progress, Timeout: spec.Timeout,
			Frontend: spec.Frontend, Rate: spec.Rate, Poisson: spec.Poisson, ServeTime: spec.ServeTime, DeregistrationDelay: spec.DeregistrationDelay,
		},
		seq: seq,
		ns:  fmt.Sprintf("%s-%d", spec.Name, seq),
	}
	res, err := r.run(ctx, plan{
		workload:        spec.Workload,
		disrupt:         func(ctx context.Context, _ *Result) error { return spec.Disrupt(ctx, &Steps{r}) },
		unrecordedHolds: spec.UnrecordedHolds,
	})
	if err != nil {
		return res, fmt.Errorf("%s in namespace %s: %w", spec.Name, r.ns, err)
	}
	return res, nil
}
