package lbcreact

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/internal/lbc"
)

// Controller is a load balancer controller under measurement.
type Controller struct {
	// Name labels its figures and names its namespace and target group.
	Name string
	// Start runs it against the cluster, its AWS calls going to the
	// ELBv2 and EC2 endpoint url, until stop.
	Start func(ctx context.Context, url string) (stop func() error, err error)
}

// Options shape one measurement.
type Options struct {
	// Pods is how many pods are registered and then terminated, one at a
	// time (default 20).
	Pods int
	// Gap separates two samples, so the follow-up reconciles of one (the
	// controller's own gate patch queues the binding again) end before the
	// next starts. Settle is the pause after the pods are created, before
	// the first sample: a controller skips an endpoint whose pod its cache
	// has not seen yet, and its cache cannot be observed from outside.
	Gap, Settle time.Duration
	Log         *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Pods <= 0 {
		o.Pods = 20
	}
	if o.Gap <= 0 {
		o.Gap = 300 * time.Millisecond
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Result holds one controller's reaction times, one entry per pod, each
// counted from the moment the EndpointSlice write that caused it was sent:
// the write commits somewhere within SliceWrite after that.
type Result struct {
	Controller string
	// Register is until RegisterTargets naming a new endpoint reached the
	// emulator; Gate until the pod's readiness-gate condition was first
	// seen written; Deregister until DeregisterTargets naming a
	// terminating endpoint reached the emulator.
	Register, Gate, Deregister []time.Duration
	// SliceWrite is how long each EndpointSlice write itself took: the
	// uncertainty of every figure's starting point.
	SliceWrite []time.Duration
	// FirstGates counts the readiness-gate conditions as the controller
	// first wrote them, by status, reason and message.
	FirstGates map[string]int
	// UserAgent is what the controller's target calls carried.
	UserAgent string
	// Calls counts the AWS calls the emulator answered, by action, with
	// the error code of each refused one after a colon: a call the
	// emulator does not serve shows up here.
	Calls map[string]int
}

// Add appends o's samples and calls to r's.
func (r *Result) Add(o Result) {
	r.Register = append(r.Register, o.Register...)
	r.Gate = append(r.Gate, o.Gate...)
	r.Deregister = append(r.Deregister, o.Deregister...)
	r.SliceWrite = append(r.SliceWrite, o.SliceWrite...)
	r.UserAgent = o.UserAgent
	r.Calls = addCounts(r.Calls, o.Calls)
	r.FirstGates = addCounts(r.FirstGates, o.FirstGates)
}

func addCounts(to, from map[string]int) map[string]int {
	if to == nil {
		to = map[string]int{}
	}
	for k, n := range from {
		to[k] += n
	}
	return to
}

const (
	nodeName    = "lbcreact-node"
	holdFinal   = "lbcreact.albdrain.dev/hold"
	bindingName = "web"
	targetPort  = 8080
)

// podAddr is pod i's address, in the emulator's VPC. An EndpointSlice may
// not hold loopback addresses, so the targets are pod-like ones the
// emulator never contacts.
func podAddr(run, i int) string {
	return netip.AddrFrom4([4]byte{10, 77, byte(run), byte(10 + i)}).String()
}

// Measure runs ctl against a fresh emulator and a namespace of its own in
// the cluster at cfg, registers opts.Pods pods one at a time and then
// terminates them one at a time, timing each reaction. run (1-255)
// numbers the measurement, so several can share a cluster.
func Measure(ctx context.Context, cfg *rest.Config, c client.Client, run int, ctl Controller, opts Options) (Result, error) {
	opts = opts.withDefaults()
	res := Result{Controller: ctl.Name}
	if run < 1 || run > 255 {
		return res, fmt.Errorf("run %d outside 1-255", run)
	}
	emu, err := albemu.New(albemu.Options{
		Lag:                        ptr.To(albemu.ConstantLag(0)),
		DefaultDeregistrationDelay: albemu.Immediate,
		AllowNonLoopbackTargets:    true,
		// Checks this rare keep every target in its initial state for the
		// whole measurement, its gate False.
		DefaultHealthCheck: albemu.HealthCheck{Interval: 300 * time.Second, Timeout: 120 * time.Second},
		SecurityGroups: []albemu.SecurityGroup{{
			ID: "sg-0lbcreact0000000", Name: "lbcreact-nodes", VpcID: albemu.DefaultVPCID,
			Tags: map[string]string{"kubernetes.io/cluster/" + fakelbc.DefaultClusterName: "owned"},
		}},
	})
	if err != nil {
		return res, err
	}
	defer emu.Close()
	ns := fmt.Sprintf("lbcreact-%s-%d", ctl.Name, run)
	tgARN, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: ns, Port: targetPort, VpcID: albemu.DefaultVPCID})
	if err != nil {
		return res, err
	}
	rec, err := startRecorder(emu.URL())
	if err != nil {
		return res, err
	}
	defer rec.Close()

	w := &world{c: c, ns: ns, run: run, pods: opts.Pods}
	if err := w.create(ctx, tgARN); err != nil {
		return res, fmt.Errorf("%s: set up: %w", ctl.Name, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return res, err
	}
	gates, err := watchGates(ctx, cs, ns, corev1.PodConditionType(lbc.ReadinessGatePrefix+bindingName))
	if err != nil {
		return res, err
	}
	defer gates.stop()

	stop, err := ctl.Start(ctx, rec.URL())
	if err != nil {
		return res, fmt.Errorf("%s: start: %w", ctl.Name, err)
	}
	defer func() {
		if err := stop(); err != nil {
			opts.Log.Info("stop controller", "controller", ctl.Name, "err", err)
		}
	}()
	if err := w.waitReconciled(ctx); err != nil {
		return res, fmt.Errorf("%s: first reconcile: %w", ctl.Name, err)
	}
	opts.Log.Info("binding reconciled", "controller", ctl.Name)
	if err := pause(ctx, opts.Settle); err != nil {
		return res, err
	}

	smp := &sampler{w: w, rec: rec, gates: gates, res: &res, log: opts.Log.With("controller", ctl.Name)}
	for _, step := range []func(context.Context, int) error{smp.register, smp.terminate} {
		for i := range opts.Pods {
			if err := step(ctx, i); err != nil {
				return res, fmt.Errorf("%s: pod %d: %w", ctl.Name, i, err)
			}
			if err := pause(ctx, opts.Gap); err != nil {
				return res, err
			}
		}
	}
	// The controller cleans up its own binding, so the next one measured
	// in this cluster finds none pointing at a target group it lacks.
	if err := w.deleteBinding(ctx); err != nil {
		return res, fmt.Errorf("%s: %w", ctl.Name, err)
	}
	for _, call := range rec.Calls() {
		res.UserAgent = call.UserAgent
	}
	res.FirstGates = gates.firstWritten()
	res.Calls = map[string]int{}
	for _, call := range emu.Calls() {
		k := call.Action
		if call.ErrorCode != "" {
			k += ":" + call.ErrorCode
		}
		res.Calls[k]++
	}
	return res, nil
}

// sampler takes one sample of each kind per pod into res.
type sampler struct {
	w     *world
	rec   *recorder
	gates *gateTimes
	res   *Result
	log   *slog.Logger
}

// register adds pod i's endpoint, not ready, and times its registration
// and its gate condition.
func (s *sampler) register(ctx context.Context, i int) error {
	t0, took, err := s.w.setEndpoint(ctx, i, false)
	if err != nil {
		return err
	}
	reg, err := waitFor(ctx, func(ctx context.Context) (time.Time, error) {
		return s.rec.wait(ctx, "RegisterTargets", podAddr(s.w.run, i), t0)
	})
	if err != nil {
		return fmt.Errorf("never registered: %w", err)
	}
	gate, err := waitFor(ctx, func(ctx context.Context) (time.Time, error) { return s.gates.wait(ctx, s.w.podName(i)) })
	if err != nil {
		return fmt.Errorf("gate never written: %w", err)
	}
	s.res.Register = append(s.res.Register, reg.Sub(t0))
	s.res.Gate = append(s.res.Gate, gate.Sub(t0))
	s.res.SliceWrite = append(s.res.SliceWrite, took)
	s.log.Info("registered", "pod", i, "register", reg.Sub(t0), "gate", gate.Sub(t0))
	return nil
}

// terminate deletes pod i, marks its endpoint terminating as the
// EndpointSlice controller would, and times its deregistration; then the
// pod goes.
func (s *sampler) terminate(ctx context.Context, i int) error {
	before := time.Now()
	if err := s.w.c.Delete(ctx, s.w.pod(i)); err != nil {
		return err
	}
	t0, took, err := s.w.setEndpoint(ctx, i, true)
	if err != nil {
		return err
	}
	dereg, err := waitFor(ctx, func(ctx context.Context) (time.Time, error) {
		return s.rec.wait(ctx, "DeregisterTargets", podAddr(s.w.run, i), before)
	})
	if err != nil {
		return fmt.Errorf("never deregistered: %w", err)
	}
	s.res.Deregister = append(s.res.Deregister, dereg.Sub(t0))
	s.res.SliceWrite = append(s.res.SliceWrite, took)
	s.log.Info("deregistered", "pod", i, "deregister", dereg.Sub(t0))
	return s.w.remove(ctx, i)
}

// sampleTimeout bounds one reaction: far beyond any the controllers show,
// short enough that a controller that never reacts fails the run.
const sampleTimeout = time.Minute

func waitFor(ctx context.Context, f func(ctx context.Context) (time.Time, error)) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	return f(ctx)
}

func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
