package lbcreact

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

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
	if r.Calls == nil {
		r.Calls = map[string]int{}
	}
	for k, n := range o.Calls {
		r.Calls[k] += n
	}
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

	for i := range opts.Pods {
		t0, took, err := w.setEndpoint(ctx, i, false)
		if err != nil {
			return res, err
		}
		reg, err := waitFor(ctx, func(ctx context.Context) (time.Time, error) {
			return rec.wait(ctx, "RegisterTargets", podAddr(run, i), t0)
		})
		if err != nil {
			return res, fmt.Errorf("%s: pod %d never registered: %w", ctl.Name, i, err)
		}
		gate, err := waitFor(ctx, func(ctx context.Context) (time.Time, error) { return gates.wait(ctx, w.podName(i)) })
		if err != nil {
			return res, fmt.Errorf("%s: pod %d's gate never written: %w", ctl.Name, i, err)
		}
		res.Register = append(res.Register, reg.Sub(t0))
		res.Gate = append(res.Gate, gate.Sub(t0))
		res.SliceWrite = append(res.SliceWrite, took)
		opts.Log.Info("registered", "controller", ctl.Name, "pod", i, "register", reg.Sub(t0), "gate", gate.Sub(t0))
		if err := pause(ctx, opts.Gap); err != nil {
			return res, err
		}
	}
	for i := range opts.Pods {
		before := time.Now()
		if err := c.Delete(ctx, w.pod(i)); err != nil {
			return res, err
		}
		t0, took, err := w.setEndpoint(ctx, i, true)
		if err != nil {
			return res, err
		}
		dereg, err := waitFor(ctx, func(ctx context.Context) (time.Time, error) {
			return rec.wait(ctx, "DeregisterTargets", podAddr(run, i), before)
		})
		if err != nil {
			return res, fmt.Errorf("%s: pod %d never deregistered: %w", ctl.Name, i, err)
		}
		res.Deregister = append(res.Deregister, dereg.Sub(t0))
		res.SliceWrite = append(res.SliceWrite, took)
		opts.Log.Info("deregistered", "controller", ctl.Name, "pod", i, "deregister", dereg.Sub(t0))
		if err := w.remove(ctx, i); err != nil {
			return res, err
		}
		if err := pause(ctx, opts.Gap); err != nil {
			return res, err
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

// world is one measurement's objects: a Service whose EndpointSlice this
// package writes as the EndpointSlice controller would, its pods on one
// Ready node, and a binding of ip targets.
type world struct {
	c     client.Client
	ns    string
	run   int
	pods  int
	slice *discoveryv1.EndpointSlice
}

func (w *world) podName(i int) string { return fmt.Sprintf("web-%02d", i) }

func (w *world) pod(i int) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: w.podName(i)}}
}

func (w *world) create(ctx context.Context, tgARN string) error {
	if err := w.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}}); err != nil {
		return err
	}
	if err := w.node(ctx); err != nil {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: bindingName},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(targetPort)}},
		},
	}
	if err := w.c.Create(ctx, svc); err != nil {
		return err
	}
	w.slice = &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: bindingName + "-lbcreact", Labels: map[string]string{
			discoveryv1.LabelServiceName: bindingName,
			discoveryv1.LabelManagedBy:   "lbcreact.albdrain.dev",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](targetPort), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if err := w.c.Create(ctx, w.slice); err != nil {
		return err
	}
	for i := range w.pods {
		if err := w.createPod(ctx, i); err != nil {
			return err
		}
	}
	tt := lbc.TargetTypeIP
	return w.c.Create(ctx, &lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: bindingName},
		Spec: lbc.TargetGroupBindingSpec{
			TargetGroupARN: tgARN, TargetType: &tt,
			ServiceRef: lbc.ServiceReference{Name: bindingName, Port: intstr.FromInt32(80)},
		},
	})
}

// node creates the Ready node every pod runs on, once per cluster.
func (w *world) node(ctx context.Context) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
	if err := w.c.Create(ctx, n); apierrors.IsAlreadyExists(err) {
		return nil
	} else if err != nil {
		return err
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	return w.c.Status().Update(ctx, n)
}

// createPod creates pod i as a new rollout pod is while its readiness
// gate waits: running, containers ready, not Ready.
func (w *world) createPod(ctx context.Context, i int) error {
	p := w.pod(i)
	p.Labels = map[string]string{"app": "web"}
	p.Finalizers = []string{holdFinal}
	p.Spec = corev1.PodSpec{
		NodeName:       nodeName,
		Containers:     []corev1.Container{{Name: "app", Image: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: targetPort}}}},
		ReadinessGates: []corev1.PodReadinessGate{{ConditionType: corev1.PodConditionType(lbc.ReadinessGatePrefix + bindingName)}},
	}
	if err := w.c.Create(ctx, p); err != nil {
		return err
	}
	now := metav1.Now()
	ip := podAddr(w.run, i)
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, HostIP: "127.0.0.1",
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: now},
		},
	}
	return w.c.Status().Update(ctx, p)
}

// setEndpoint adds pod i's endpoint to the slice, not ready (its gate is
// not True yet), or marks it terminating; it returns when the write was
// sent and how long it took.
func (w *world) setEndpoint(ctx context.Context, i int, terminating bool) (time.Time, time.Duration, error) {
	ep := discoveryv1.Endpoint{
		Addresses:  []string{podAddr(w.run, i)},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(false), Terminating: ptr.To(terminating)},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: w.ns, Name: w.podName(i)},
		NodeName:   ptr.To(nodeName),
	}
	w.setSliceEndpoint(ep)
	start := time.Now()
	if err := w.c.Update(ctx, w.slice); err != nil {
		return time.Time{}, 0, fmt.Errorf("write EndpointSlice: %w", err)
	}
	return start, time.Since(start), nil
}

func (w *world) setSliceEndpoint(ep discoveryv1.Endpoint) {
	for j := range w.slice.Endpoints {
		if w.slice.Endpoints[j].Addresses[0] == ep.Addresses[0] {
			w.slice.Endpoints[j] = ep
			return
		}
	}
	w.slice.Endpoints = append(w.slice.Endpoints, ep)
}

// remove ends pod i as the kubelet and the EndpointSlice controller would
// once it stopped: its endpoint leaves the slice, the pod goes.
func (w *world) remove(ctx context.Context, i int) error {
	addr := podAddr(w.run, i)
	eps := w.slice.Endpoints[:0]
	for _, ep := range w.slice.Endpoints {
		if ep.Addresses[0] != addr {
			eps = append(eps, ep)
		}
	}
	w.slice.Endpoints = eps
	if err := w.c.Update(ctx, w.slice); err != nil {
		return err
	}
	p := w.pod(i)
	if err := w.c.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		return client.IgnoreNotFound(err)
	}
	base := p.DeepCopy()
	controllerutil.RemoveFinalizer(p, holdFinal)
	return client.IgnoreNotFound(w.c.Patch(ctx, p, client.MergeFrom(base)))
}

// deleteBinding deletes the binding and waits for its controller to drop
// its finalizer.
func (w *world) deleteBinding(ctx context.Context) error {
	tgb := &lbc.TargetGroupBinding{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: bindingName}}
	if err := w.c.Delete(ctx, tgb); err != nil {
		return err
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := w.c.Get(ctx, client.ObjectKeyFromObject(tgb), tgb)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("the deleted binding kept its finalizer")
	}
	return err
}

// waitReconciled waits for the binding's first successful reconcile.
func (w *world) waitReconciled(ctx context.Context) error {
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var tgb lbc.TargetGroupBinding
		if err := w.c.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: bindingName}, &tgb); err != nil {
			return false, err
		}
		g := tgb.Status.ObservedGeneration
		return g != nil && *g == tgb.Generation, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("status.observedGeneration never written")
	}
	return err
}
