package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/drain/helper"
	"github.com/albdrain/albdrain/drain/watcher"
	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/drain/watcher/release"
	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

const (
	servedPort   = 8080
	pollInterval = 100 * time.Millisecond
	// waitLimit bounds every wait for an event; reaching it is a failure,
	// not a measurement.
	waitLimit = 60 * time.Second
)

// TestWatcher runs the watcher against a real kube-apiserver with the
// TargetGroupBinding CRD and the ALB emulator through the real SDK. The
// subtests share the control plane and run in parallel, each in its own
// namespace with its own emulator and watcher.
func TestWatcher(t *testing.T) {
	env := kubetest.Start(t, kubetest.WithTargetGroupBindingCRD())
	for name, test := range map[string]func(*testing.T, *kubetest.Env){
		"ReleasedOnlyAfterTheTargetLeavesService": testReleasedAfterTargetLeaves,
		"NeverRegisteredReleasesAtOnce":           testNeverRegistered,
		"ThrottlingFallsBack":                     testThrottlingFallsBack,
		"OutageFallsBack":                         testOutageFallsBack,
		"RestartMidHold":                          testRestartMidHold,
		"OnePollPerIntervalForManyPods":           testOnePollPerInterval,
		"QuietOnceTheALBStopsSending":             testQuietOnceTheALBStopsSending,
		"NativeSidecarServesTheTarget":            testNativeSidecar,
		"ProbeRestartReleasesAtOnce":              testProbeRestartReleasesAtOnce,
		"KubeletEvictionIsHeld":                   testKubeletEvictionIsHeld,
		"ShortenedGraceLeavesTheBudget":           testShortenedGraceLeavesTheBudget,
		"SixHeldContainersOneHold":                testSixHeldContainersOneHold,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, env)
		})
	}
}

func testReleasedAfterTargetLeaves(t *testing.T, env *kubetest.Env) {
	s := newScenario(t, env, true)
	pod := s.newPod("web-1")
	target := s.target(pod)
	s.serve(target)
	s.register(target, albemu.StateHealthy)
	s.startWatcher(s.metrics)
	s.delete(pod)

	res := s.hold(pod, 200*time.Millisecond)
	s.eventually("the hold reaches the watcher", func() bool { return testutil.ToFloat64(s.metrics.HoldsInFlight) == 1 })
	// Several polls see the target healthy; the pod stays held.
	calls := s.emu.CallCount("DescribeTargetHealth")
	s.emuWait("three more polls", func() bool { return s.emu.CallCount("DescribeTargetHealth") >= calls+3 })
	select {
	case r := <-res:
		t.Fatalf("released while the target was healthy: %+v", r)
	default:
	}

	// What the load balancer controller does when it sees the pod terminating.
	if err := s.emu.DeregisterTargets(s.tg, target); err != nil {
		t.Fatal(err)
	}
	r := s.result(res)
	if r.Outcome != contract.OutcomeDeregistered || !r.Quiet {
		t.Fatalf("hold ended %+v, want deregistered after a quiet period", r)
	}
	health, err := s.emu.TargetHealth(s.tg, target)
	if err != nil {
		t.Fatal(err)
	}
	if health[0].State != albemu.StateUnused {
		t.Errorf("released while the target was %s, want it out of service (unused)", health[0].State)
	}
	if got := testutil.ToFloat64(s.metrics.Holds.WithLabelValues("deregistered")); got != 1 {
		t.Errorf("albdrain_holds_total{outcome=deregistered} = %v, want 1", got)
	}
	if got := testutil.CollectAndCount(s.metrics.HoldDuration); got != 1 {
		t.Errorf("hold duration series = %d, want 1", got)
	}
	s.wantEvents(pod, contract.ReasonHoldStarted, contract.ReasonHoldReleased)
}

// A native sidecar (a restartable init container) serving the target port
// is found by the watcher as by the webhook: the pod is held until its
// target leaves, not released at once as never registered.
func testNativeSidecar(t *testing.T, env *kubetest.Env) {
	s := newScenario(t, env, true)
	pod := s.newPod("web-1", func(p *corev1.Pod) {
		proxy := p.Spec.Containers[0]
		proxy.Name, proxy.RestartPolicy = "proxy", ptr.To(corev1.ContainerRestartPolicyAlways)
		p.Spec.InitContainers = []corev1.Container{proxy}
		p.Spec.Containers[0].Ports = nil
	})
	target := s.target(pod)
	s.serve(target)
	s.register(target, albemu.StateHealthy)
	s.startWatcher(s.metrics)
	s.delete(pod)

	res := s.hold(pod, 0)
	s.deregisterOncePolled(target)
	if r := s.result(res); r.Outcome != contract.OutcomeDeregistered {
		t.Fatalf("hold ended %+v, want deregistered once the sidecar's target left", r)
	}
}

func testNeverRegistered(t *testing.T, env *kubetest.Env) {
	s := newScenario(t, env, true)
	pod := s.newPod("web-1")
	s.startWatcher(s.metrics)
	s.delete(pod)
	if r := s.result(s.hold(pod, 0)); r.Outcome != contract.OutcomeNotRegistered {
		t.Fatalf("hold ended %q, want not_registered", r.Outcome)
	}
	if got := testutil.ToFloat64(s.metrics.Holds.WithLabelValues("not_registered")); got != 1 {
		t.Errorf("albdrain_holds_total{outcome=not_registered} = %v, want 1", got)
	}
}

func testThrottlingFallsBack(t *testing.T, env *kubetest.Env) {
	s := newScenario(t, env, true)
	pod := s.newPod("web-1")
	target := s.target(pod)
	s.register(target, albemu.StateInitial)
	s.startWatcher(s.metrics)
	s.delete(pod)
	s.emu.SetActionFaults("DescribeTargetHealth", albemu.Faults{ThrottleFraction: 1})

	if r := s.result(s.hold(pod, 0)); r.Outcome != contract.OutcomeFallback {
		t.Fatalf("hold ended %q, want fallback", r.Outcome)
	}
	// The SDK retried each poll; every throttled attempt is counted.
	if got := testutil.ToFloat64(s.metrics.ELBv2Throttles.WithLabelValues("DescribeTargetHealth")); got < 3 {
		t.Errorf("albdrain_elbv2_throttles_total = %v, want at least 3", got)
	}
	if got := testutil.ToFloat64(s.metrics.Holds.WithLabelValues("fallback")); got != 1 {
		t.Errorf("albdrain_holds_total{outcome=fallback} = %v, want 1", got)
	}
	s.wantEvents(pod, contract.ReasonHoldStarted, contract.ReasonHoldFellBack)
}

func testOutageFallsBack(t *testing.T, env *kubetest.Env) {
	for name, outage := range map[string]albemu.Outage{"Unavailable": albemu.OutageUnavailable, "Dropped": albemu.OutageDrop} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newScenario(t, env, true)
			pod := s.newPod("web-1")
			s.register(s.target(pod), albemu.StateInitial)
			s.startWatcher(s.metrics)
			s.delete(pod)
			s.emu.SetFaults(albemu.Faults{Outage: outage})
			if r := s.result(s.hold(pod, 0)); r.Outcome != contract.OutcomeFallback {
				t.Fatalf("hold ended %q, want fallback", r.Outcome)
			}
			if got := testutil.ToFloat64(s.metrics.ELBv2Requests.WithLabelValues("DescribeTargetHealth", metrics.ResultError)); got < 3 {
				t.Errorf("failed DescribeTargetHealth attempts = %v, want at least 3", got)
			}
		})
	}
}

func testRestartMidHold(t *testing.T, env *kubetest.Env) {
	s := newScenario(t, env, true)
	pod := s.newPod("web-1")
	target := s.target(pod)
	s.serve(target)
	s.register(target, albemu.StateHealthy)
	first := metrics.New()
	stopFirst := s.startWatcher(first)
	s.delete(pod)

	res := s.hold(pod, 0)
	s.eventually("the hold reaches the first replica", func() bool { return testutil.ToFloat64(first.HoldsInFlight) == 1 })
	stopFirst()

	// The helper retries while no replica listens; the replacement starts
	// with nothing but what Kubernetes and ELBv2 tell it.
	second := metrics.New()
	s.startWatcher(second)
	s.eventually("the retried hold reaches the second replica", func() bool { return testutil.ToFloat64(second.HoldsInFlight) == 1 })
	select {
	case r := <-res:
		t.Fatalf("released while the target was healthy: %+v", r)
	default:
	}
	if err := s.emu.DeregisterTargets(s.tg, target); err != nil {
		t.Fatal(err)
	}
	if r := s.result(res); r.Outcome != contract.OutcomeDeregistered {
		t.Fatalf("hold ended %q, want deregistered", r.Outcome)
	}
	if got := testutil.ToFloat64(second.Holds.WithLabelValues("deregistered")); got != 1 {
		t.Errorf("second replica's deregistered holds = %v, want 1", got)
	}
	for _, o := range contract.Outcomes {
		if got := testutil.ToFloat64(first.Holds.WithLabelValues(string(o))); got != 0 {
			t.Errorf("first replica ended a hold as %s; it was stopped before any outcome", o)
		}
	}
}

func testOnePollPerInterval(t *testing.T, env *kubetest.Env) {
	const n = 10
	s := newScenario(t, env, true)
	var pods []*corev1.Pod
	for i := range n {
		pod := s.newPod(fmt.Sprintf("web-%d", i))
		// No server: the targets stay registered but unhealthy, which holds.
		s.register(s.target(pod), albemu.StateInitial)
		pods = append(pods, pod)
	}
	s.startWatcher(s.metrics)
	var results []<-chan contract.HoldEnd
	for _, pod := range pods {
		s.delete(pod)
		results = append(results, s.hold(pod, 0))
	}
	s.eventually("a poll names every held pod", func() bool {
		polls := s.api.since(0)
		return len(polls) > 0 && polls[len(polls)-1] == n
	})

	mark := s.api.count()
	start := time.Now()
	calls := s.emu.CallCount("DescribeTargetHealth")
	s.emuWait("five more polls", func() bool { return s.emu.CallCount("DescribeTargetHealth") >= calls+5 })
	window := time.Since(start)
	polls := s.api.since(mark)
	for i, p := range polls {
		if p != n {
			t.Errorf("DescribeTargetHealth %d named %d targets, want all %d held pods in one request", i, p, n)
		}
	}
	// Polls start at least an interval apart, so a window holds at most
	// window/interval + 2 of them (one may have been under way at its start).
	if limit := int(window/pollInterval) + 2; len(polls) > limit {
		t.Errorf("%d DescribeTargetHealth calls in %v, want at most %d: one per %v interval", len(polls), window, limit, pollInterval)
	}
	if got := testutil.ToFloat64(s.metrics.TargetGroupsWatched); got != 1 {
		t.Errorf("albdrain_target_groups_watched = %v, want 1", got)
	}

	for _, pod := range pods {
		if err := s.emu.DeregisterTargets(s.tg, s.target(pod)); err != nil {
			t.Fatal(err)
		}
	}
	for i, res := range results {
		if r := s.result(res); r.Outcome != contract.OutcomeDeregistered {
			t.Errorf("pod %d: hold ended %q, want deregistered", i, r.Outcome)
		}
	}
	s.eventually("polling stops with the last hold", func() bool { return testutil.ToFloat64(s.metrics.TargetGroupsWatched) == 0 })
}

// TestWatcherWithoutTargetGroupBindings covers clusters without the CRD:
// the watcher finds the target group by its tags.
func TestWatcherWithoutTargetGroupBindings(t *testing.T) {
	t.Parallel()
	env := kubetest.Start(t)
	s := newScenario(t, env, false)
	pod := s.newPod("web-1")
	target := s.target(pod)
	s.register(target, albemu.StateInitial)
	s.startWatcher(s.metrics)
	s.delete(pod)
	res := s.hold(pod, 0)
	s.eventually("the hold reaches the watcher", func() bool { return testutil.ToFloat64(s.metrics.HoldsInFlight) == 1 })
	if err := s.emu.DeregisterTargets(s.tg, target); err != nil {
		t.Fatal(err)
	}
	if r := s.result(res); r.Outcome != contract.OutcomeDeregistered {
		t.Fatalf("hold ended %q, want deregistered", r.Outcome)
	}
}

// scenario is one namespace with a Service behind an emulated ALB target
// group, and the watcher replicas serving it.
type scenario struct {
	t        *testing.T
	env      *kubetest.Env
	ns       string
	emu      *albemu.Emulator
	tg       string
	api      *apiLog
	metrics  *metrics.Metrics
	holdAddr string
	// policy is the watcher's release policy: deregistered unless a test
	// is about another, so the other tests see the target leave service.
	policy release.Policy
}

const clusterName = "albdrain-test"

func newScenario(t *testing.T, env *kubetest.Env, bindings bool) *scenario {
	t.Helper()
	s := &scenario{t: t, env: env, emu: albemu.NewForTest(t, albemu.Options{}), api: &apiLog{}, metrics: metrics.New(), holdAddr: freeAddr(t), policy: release.PolicyDeregistered}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "drain-"}}
	s.create(ns)
	s.ns = ns.Name

	var err error
	s.tg, err = s.emu.CreateTargetGroup(albemu.TargetGroupSpec{
		Name:                "web-" + s.ns,
		Port:                servedPort,
		DeregistrationDelay: time.Second,
		HealthCheck:         albemu.HealthCheck{Interval: 100 * time.Millisecond, Timeout: 50 * time.Millisecond, HealthyThreshold: 1},
		Tags:                map[string]string{"elbv2.k8s.aws/cluster": clusterName, "ingress.k8s.aws/resource": s.ns + "/web-ingress-web:80"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	})
	if bindings {
		ip := lbc.TargetTypeIP
		s.create(&lbc.TargetGroupBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "web"},
			Spec: lbc.TargetGroupBindingSpec{
				TargetGroupARN: s.tg,
				TargetType:     &ip,
				ServiceRef:     lbc.ServiceReference{Name: "web", Port: intstr.FromInt32(80)},
			},
		})
	}
	return s
}

func (s *scenario) create(obj client.Object) {
	s.t.Helper()
	if err := s.env.Client.Create(context.Background(), obj); err != nil {
		s.t.Fatalf("create %T: %v", obj, err)
	}
}

// startWatcher runs a watcher replica recording into m and returns a
// function that stops it (also called at cleanup).
func (s *scenario) startWatcher(m *metrics.Metrics) (stop func()) {
	s.t.Helper()
	mgr, err := ctrl.NewManager(s.env.Config, ctrl.Options{
		Scheme:  kubetest.NewScheme(),
		Logger:  testr.New(s.t),
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   app.CacheOptions(),
	})
	if err != nil {
		s.t.Fatal(err)
	}
	cfg := watcher.NewConfig()
	cfg.HoldAddr = s.holdAddr
	cfg.CertDir = "" // plain HTTP: the helper in these tests has no CA to trust
	cfg.PollInterval = pollInterval
	cfg.ReleasePolicy = s.policy
	cfg.APIRate, cfg.APIBurst = 1000, 100
	cfg.AWSEndpointURL = s.emu.URL()
	cfg.ClusterName = clusterName
	awsCfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 10 * time.Millisecond })
		},
		HTTPClient: &http.Client{Transport: s.api},
	}
	finder, err := lbc.NewFinder(context.Background(), mgr, lbc.NewConfig())
	if err != nil {
		s.t.Fatal(err)
	}
	api := elbv2.NewClient(awsCfg, cfg.ClientOptions(m))
	deps := watcher.Deps{ELBv2: api, Resolver: watcher.NewResolver(mgr.GetLogger(), cfg, finder, api), Metrics: m}
	if err := watcher.Setup(mgr, cfg, deps); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("watcher: %v", err)
		}
	})
	s.t.Cleanup(stop)
	return stop
}

var lastIP atomic.Uint32

// newPod creates a managed pod on a loopback IP of its own, as if the
// webhook had mutated it and a kubelet had started it.
func (s *scenario) newPod(name string, changes ...func(*corev1.Pod)) *corev1.Pod {
	s.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.ns, Name: name,
			Labels: map[string]string{"app": "web", contract.ManagedLabel: "true"},
		},
		Spec: corev1.PodSpec{
			// A pod bound to a node is deleted gracefully: it keeps its
			// deletionTimestamp, with no kubelet here to finish the job.
			NodeName: "node-1",
			Containers: []corev1.Container{{
				Name: "app", Image: "app",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: servedPort}},
			}},
		},
	}
	for _, change := range changes {
		change(pod)
	}
	s.create(pod)
	n := lastIP.Add(1)
	ip := fmt.Sprintf("127.77.%d.%d", n/250, 1+n%250)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if err := s.env.Client.Status().Update(context.Background(), pod); err != nil {
		s.t.Fatal(err)
	}
	return pod
}

func (s *scenario) target(pod *corev1.Pod) albemu.Target {
	return albemu.Target{ID: pod.Status.PodIP, Port: servedPort}
}

func (s *scenario) delete(pod *corev1.Pod) {
	s.t.Helper()
	if err := s.env.Client.Delete(context.Background(), pod, client.GracePeriodSeconds(120)); err != nil {
		s.t.Fatal(err)
	}
}

// serve runs the pod's application: an HTTP server answering 200 on the
// target's address, so health checks pass.
func (s *scenario) serve(t albemu.Target) {
	s.t.Helper()
	ln, err := net.Listen("tcp", t.String())
	if err != nil {
		s.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	s.t.Cleanup(func() { srv.Close() })
}

// register adds the target as the load balancer controller would and
// waits until it reaches state.
func (s *scenario) register(t albemu.Target, state string) {
	s.t.Helper()
	if err := s.emu.RegisterTargets(s.tg, t); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := s.emu.WaitTargetState(ctx, s.tg, t, state); err != nil {
		s.t.Fatal(err)
	}
}

// hold runs the helper's wait mode for pod, as its preStop would, and
// delivers the result; changes adjust the helper's command line.
func (s *scenario) hold(pod *corev1.Pod, quiet time.Duration, changes ...func(*contract.Spec)) <-chan contract.HoldEnd {
	spec := contract.Spec{
		Mode:        contract.ModeWait,
		MaxHold:     2 * waitLimit,
		Fallback:    10 * time.Millisecond,
		QuietPeriod: quiet,
		Ports:       []int32{servedPort},
	}
	for _, change := range changes {
		change(&spec)
	}
	env := helper.Env{
		PodName:      pod.Name,
		PodNamespace: pod.Namespace,
		PodUID:       string(pod.UID),
		PodIP:        netip.MustParseAddr(pod.Status.PodIP),
		WatcherURL:   "http://" + s.holdAddr,
	}
	opts := helper.Options{
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		RetryBackoff: 20 * time.Millisecond,
		MaxBackoff:   100 * time.Millisecond,
		// Long enough for a replica to come up in the restart test.
		MaxFailures: 300,
	}
	res := make(chan contract.HoldEnd, 1)
	go func() {
		r, _ := helper.Run(context.Background(), spec, env, opts)
		res <- r
	}()
	return res
}

func (s *scenario) result(res <-chan contract.HoldEnd) contract.HoldEnd {
	s.t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(waitLimit):
		s.t.Fatal("the hold never ended")
		return contract.HoldEnd{}
	}
}

// eventually polls cond until it holds.
func (s *scenario) eventually(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// emuWait waits for a condition on the emulator's state.
func (s *scenario) emuWait(what string, cond func() bool) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := s.emu.Wait(ctx, cond); err != nil {
		s.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// wantEvents waits until the pod has events with every reason.
func (s *scenario) wantEvents(pod *corev1.Pod, reasons ...string) {
	s.t.Helper()
	s.eventually("events "+strings.Join(reasons, ", ")+" on the pod", func() bool {
		var list eventsv1.EventList
		if err := s.env.Client.List(context.Background(), &list, client.InNamespace(s.ns)); err != nil {
			return false
		}
		seen := map[string]bool{}
		for _, e := range list.Items {
			if e.Regarding.UID == pod.UID && e.ReportingController == watcher.EventSource {
				seen[e.Reason] = true
			}
		}
		for _, r := range reasons {
			if !seen[r] {
				return false
			}
		}
		return true
	})
}

// apiLog records, for every DescribeTargetHealth the watcher sends, how many
// targets it names.
type apiLog struct {
	mu    sync.Mutex
	polls []int
}

func (l *apiLog) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	if form.Get("Action") == "DescribeTargetHealth" {
		targets := 0
		for k := range form {
			if strings.HasPrefix(k, "Targets.member.") && strings.HasSuffix(k, ".Id") {
				targets++
			}
		}
		l.mu.Lock()
		l.polls = append(l.polls, targets)
		l.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (l *apiLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.polls)
}

func (l *apiLog) since(mark int) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.polls[mark:]...)
}

// freeAddr returns a loopback address no one listens on, for a hold
// endpoint that successive replicas take over.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
