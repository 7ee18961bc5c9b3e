package hold

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/drain/watcher/release"
	"github.com/albdrain/albdrain/drain/watcher/targetgroups"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

const arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"

// fakeELB serves DescribeTargetHealth from a state the test sets, counting
// polls so the test can wait for the holder to have seen a state.
type fakeELB struct {
	mu     sync.Mutex
	state  types.TargetHealthStateEnum // "" lists nothing
	err    error
	polls  int
	polled chan struct{} // closed and replaced after every poll
	dereg  []string
}

func newFakeELB(state types.TargetHealthStateEnum) *fakeELB {
	return &fakeELB{state: state, polled: make(chan struct{})}
}

func (f *fakeELB) DescribeTargetHealth(_ context.Context, in *awselbv2.DescribeTargetHealthInput, _ ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetHealthOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	close(f.polled)
	f.polled = make(chan struct{})
	if f.err != nil {
		return nil, f.err
	}
	out := &awselbv2.DescribeTargetHealthOutput{}
	if f.state != "" {
		for _, t := range in.Targets {
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, types.TargetHealthDescription{
				Target: &types.TargetDescription{Id: t.Id, Port: t.Port}, TargetHealth: &types.TargetHealth{State: f.state},
			})
		}
	}
	return out, nil
}

func (f *fakeELB) Deregister(_ context.Context, _ string, t elbv2.Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dereg = append(f.dereg, t.ID)
	return nil
}

func (f *fakeELB) set(state types.TargetHealthStateEnum) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = state
}

// waitPolls returns after n more polls.
func (f *fakeELB) waitPolls(t *testing.T, n int) {
	t.Helper()
	for range n {
		f.mu.Lock()
		ch := f.polled
		f.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("no poll")
		}
	}
}

type resolver struct {
	targets []lbc.Registration
	err     error
}

func (r resolver) Registrations(context.Context, *corev1.Pod) ([]lbc.Registration, error) {
	return r.targets, r.err
}

type delays map[string]time.Duration

func (d delays) DeregistrationDelay(_ context.Context, arn string) (time.Duration, error) {
	if v, ok := d[arn]; ok {
		return v, nil
	}
	return 0, errors.New("unknown target group")
}

type settings map[string]targetgroups.Setting

func (s settings) Setting(_ context.Context, arn string) (targetgroups.Setting, error) {
	if v, ok := s[arn]; ok {
		return v, nil
	}
	return targetgroups.Setting{}, errors.New("unknown target group")
}

var albSetting = targetgroups.Setting{Protocol: "HTTP", HealthCheck: &targetgroups.HealthCheck{Protocol: "HTTP", Port: "traffic-port", Path: "/healthz", Interval: 5 * time.Second}}

type fixture struct {
	h   *Holder
	elb *fakeELB
	rec *events.FakeRecorder
	m   *metrics.Metrics
}

func newFixture(state types.TargetHealthStateEnum) *fixture {
	elb := newFakeELB(state)
	m := metrics.New()
	rec := events.NewFakeRecorder(10)
	return &fixture{
		elb: elb, rec: rec, m: m,
		h: &Holder{
			Resolver:      resolver{targets: []lbc.Registration{{TargetGroupARN: arn, Port: 8080}}},
			Delays:        delays{arn: time.Hour},
			Settings:      settings{arn: albSetting},
			Poller:        elbv2.NewPoller(elb, time.Millisecond, m),
			Recorder:      rec,
			Metrics:       m,
			Policy:        release.PolicyDeregistered,
			FallbackAfter: 3,
			Margin:        time.Minute,
		},
	}
}

func terminatingPod() *corev1.Pod {
	now := metav1.Now()
	grace := int64(3600)
	deadline := metav1.NewTime(now.Add(time.Hour))
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", DeletionTimestamp: &deadline, DeletionGracePeriodSeconds: &grace},
		Status:     corev1.PodStatus{PodIP: "10.0.0.7"},
	}
}

type held struct {
	a  contract.Answer
	ok bool
}

func (f *fixture) hold(ctx context.Context, pod *corev1.Pod, requested time.Time) chan held {
	ch := make(chan held, 1)
	go func() {
		resp, ok := f.h.Hold(ctx, pod, requested, 0)
		ch <- held{resp, ok}
	}()
	return ch
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (f *fixture) wantEvents(t *testing.T, reasons ...string) {
	t.Helper()
	got := f.events()
	if len(got) != len(reasons) {
		t.Fatalf("events %q, want reasons %q", got, reasons)
	}
	for i, r := range reasons {
		if !strings.Contains(got[i], " "+r+" ") {
			t.Errorf("event %d = %q, want reason %s", i, got[i], r)
		}
	}
}

func TestHeldUntilTheTargetLeaves(t *testing.T) {
	f := newFixture(types.TargetHealthStateEnumHealthy)
	done := f.hold(context.Background(), terminatingPod(), time.Now().Add(time.Hour))

	f.elb.waitPolls(t, 2)
	f.elb.set(types.TargetHealthStateEnumDraining)
	f.elb.waitPolls(t, 2)
	select {
	case r := <-done:
		t.Fatalf("released while the target was still in service: %+v", r)
	default:
	}
	if got := testutil.ToFloat64(f.m.HoldsInFlight); got != 1 {
		t.Errorf("holds in flight = %v, want 1", got)
	}
	f.elb.set(types.TargetHealthStateEnumUnused)
	r := <-done
	if !r.ok || r.a.Outcome() != contract.OutcomeDeregistered {
		t.Fatalf("hold = %+v, want deregistered", r)
	}
	f.wantEvents(t, contract.ReasonHoldStarted, contract.ReasonHoldReleased)
	if got := testutil.ToFloat64(f.m.Holds.WithLabelValues("deregistered")); got != 1 {
		t.Errorf("deregistered holds = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.m.HoldsInFlight); got != 0 {
		t.Errorf("holds in flight = %v, want 0", got)
	}
}

func TestDrainingPolicySettles(t *testing.T) {
	f := newFixture(types.TargetHealthStateEnumDraining)
	f.h.Policy = release.PolicyDraining
	f.h.Settle = time.Millisecond
	r := <-f.hold(context.Background(), terminatingPod(), time.Now().Add(time.Hour))
	if r.a.Outcome() != contract.OutcomeDrainingSettled {
		t.Errorf("outcome %q, want draining_settled", r.a.Outcome())
	}
}

func TestNeverRegistered(t *testing.T) {
	f := newFixture("")
	r := <-f.hold(context.Background(), terminatingPod(), time.Now().Add(time.Hour))
	if r.a.Outcome() != contract.OutcomeNotRegistered {
		t.Errorf("outcome %q, want not_registered", r.a.Outcome())
	}

	// The load balancer controller's readiness gate shows a target gone
	// before the hold began was once registered.
	pod := terminatingPod()
	pod.Status.Conditions = []corev1.PodCondition{{Type: "target-health.elbv2.k8s.aws/k8s-shop-web", Status: corev1.ConditionTrue}}
	r = <-f.hold(context.Background(), pod, time.Now().Add(time.Hour))
	if r.a.Outcome() != contract.OutcomeDeregistered {
		t.Errorf("outcome with a passed readiness gate %q, want deregistered", r.a.Outcome())
	}

	f.h.Resolver = resolver{}
	r = <-f.hold(context.Background(), pod, time.Now().Add(time.Hour))
	if r.a.Outcome() != contract.OutcomeNotRegistered {
		t.Errorf("outcome for a pod in no target group %q, want not_registered", r.a.Outcome())
	}
}

func TestPersistentErrorsFallBack(t *testing.T) {
	f := newFixture(types.TargetHealthStateEnumHealthy)
	f.elb.err = errors.New("Throttling: Rate exceeded")
	r := <-f.hold(context.Background(), terminatingPod(), time.Now().Add(time.Hour))
	if r.a.Outcome() != contract.OutcomeFallback {
		t.Fatalf("outcome %q, want fallback", r.a.Outcome())
	}
	f.elb.mu.Lock()
	polls := f.elb.polls
	f.elb.mu.Unlock()
	if polls < 3 {
		t.Errorf("fell back after %d polls, want 3", polls)
	}
	f.wantEvents(t, contract.ReasonHoldStarted, contract.ReasonHoldFellBack)
}

func TestDiscoveryErrorFallsBack(t *testing.T) {
	f := newFixture(types.TargetHealthStateEnumHealthy)
	f.h.Resolver = resolver{err: errors.New("no cache")}
	r := <-f.hold(context.Background(), terminatingPod(), time.Now().Add(time.Hour))
	if r.a.Outcome() != contract.OutcomeFallback {
		t.Errorf("outcome %q, want fallback", r.a.Outcome())
	}
}

func TestBounds(t *testing.T) {
	t.Run("requested", func(t *testing.T) {
		f := newFixture(types.TargetHealthStateEnumHealthy)
		r := <-f.hold(context.Background(), terminatingPod(), time.Now().Add(20*time.Millisecond))
		if r.a.Outcome() != contract.OutcomeTimeout {
			t.Fatalf("outcome %q, want timeout", r.a.Outcome())
		}
		f.wantEvents(t, contract.ReasonHoldStarted, contract.ReasonHoldTimedOut)
		if got := testutil.ToFloat64(f.m.Holds.WithLabelValues("timeout")); got != 1 {
			t.Errorf("timeout holds = %v, want 1", got)
		}
	})
	t.Run("deregistration delay from deletion start", func(t *testing.T) {
		f := newFixture(types.TargetHealthStateEnumHealthy)
		f.h.Delays = delays{arn: 10 * time.Second}
		f.h.Margin = 0
		pod := terminatingPod()
		grace := int64(3600 + 10) // deletion began 10s ago
		pod.DeletionGracePeriodSeconds = &grace
		r := <-f.hold(context.Background(), pod, time.Now().Add(time.Hour))
		if r.a.Outcome() != contract.OutcomeTimeout {
			t.Errorf("outcome %q, want timeout: the delay since deletion began is over", r.a.Outcome())
		}
	})
	t.Run("grace period", func(t *testing.T) {
		f := newFixture(types.TargetHealthStateEnumHealthy)
		pod := terminatingPod()
		past := metav1.NewTime(time.Now().Add(-time.Second))
		pod.DeletionTimestamp = &past
		r := <-f.hold(context.Background(), pod, time.Now().Add(time.Hour))
		if r.a.Outcome() != contract.OutcomeTimeout {
			t.Errorf("outcome %q, want timeout at the grace period", r.a.Outcome())
		}
	})
}

func TestAbandonedHoldRecordsNothing(t *testing.T) {
	f := newFixture(types.TargetHealthStateEnumHealthy)
	ctx, cancel := context.WithCancel(context.Background())
	done := f.hold(ctx, terminatingPod(), time.Now().Add(time.Hour))
	f.elb.waitPolls(t, 1)
	cancel()
	if r := <-done; r.ok {
		t.Errorf("abandoned hold answered %+v", r.a)
	}
	for _, o := range contract.Outcomes {
		if got := testutil.ToFloat64(f.m.Holds.WithLabelValues(string(o))); got != 0 {
			t.Errorf("%s holds = %v, want 0", o, got)
		}
	}
}

func TestEarlyDeregister(t *testing.T) {
	f := newFixture("")
	f.h.EarlyDeregister = f.elb
	<-f.hold(context.Background(), terminatingPod(), time.Now().Add(time.Hour))
	if len(f.elb.dereg) != 1 || f.elb.dereg[0] != "10.0.0.7" {
		t.Errorf("deregistered %v, want the pod IP once", f.elb.dereg)
	}
}

func TestQuietPolicyHandsTheHoldToTheHelper(t *testing.T) {
	f := newFixture(types.TargetHealthStateEnumHealthy)
	f.h.Policy = release.PolicyQuiet
	done := f.hold(context.Background(), terminatingPod(), time.Now().Add(10*time.Minute))
	f.elb.waitPolls(t, 2)
	select {
	case r := <-done:
		t.Fatalf("answered while the target was healthy: %+v", r)
	default:
	}
	f.elb.set(types.TargetHealthStateEnumDraining)
	r := <-done
	if !r.ok || r.a.Handoff == nil || r.a.Handoff.Traffic == nil {
		t.Fatalf("hold = %+v, want a hand-off with the traffic", r)
	}
	bound := r.a.Handoff.Bound
	if bound <= 9*time.Minute || bound > 10*time.Minute {
		t.Errorf("bound %v, want what is left of the 10 minutes requested", bound)
	}
	want := &contract.Traffic{
		Ports:        []contract.TrafficPort{{Port: 8080}},
		HealthChecks: []contract.HealthCheck{{Port: 8080, Protocol: "HTTP", Path: "/healthz", IntervalMillis: 5000}},
	}
	if d := cmp.Diff(want, r.a.Handoff.Traffic); d != "" {
		t.Errorf("traffic (-want +got):\n%s", d)
	}
	// Handing over is not an end: no outcome is counted until the helper reports it.
	f.wantEvents(t, contract.ReasonHoldStarted, contract.ReasonHoldDeregistering)
	for _, o := range contract.Outcomes {
		if got := testutil.ToFloat64(f.m.Holds.WithLabelValues(string(o))); got != 0 {
			t.Errorf("%s holds = %v, want 0", o, got)
		}
	}

	pod, other := terminatingPod(), terminatingPod()
	other.UID = "other"
	f.h.End(context.Background(), pod, contract.HoldEnd{Outcome: contract.OutcomeQuiet, HeldMillis: 4000, QuietMillis: 1000, Signal: contract.SignalSockDiag})
	f.h.End(context.Background(), other, contract.HoldEnd{Outcome: contract.OutcomeBound, HeldMillis: 60000, QuietMillis: 30000, Signal: contract.SignalProcNet})
	// A second report for the same pod (another of its containers, a
	// retry) is not a second outcome.
	f.h.End(context.Background(), pod, contract.HoldEnd{Outcome: contract.OutcomeBound, HeldMillis: 5000, QuietMillis: 1000, Signal: contract.SignalSockDiag})
	f.wantEvents(t, contract.ReasonHoldReleased, contract.ReasonHoldBounded)
	got := map[string]float64{}
	for _, o := range []contract.Outcome{contract.OutcomeQuiet, contract.OutcomeBound} {
		got[string(o)] = testutil.ToFloat64(f.m.Holds.WithLabelValues(string(o)))
	}
	if d := cmp.Diff(map[string]float64{"quiet": 1, "bound": 1}, got); d != "" {
		t.Errorf("holds by outcome (-want +got):\n%s", d)
	}
	if n := testutil.CollectAndCount(f.m.HoldDuration); n != 2 {
		t.Errorf("%d hold duration series, want quiet and bound", n)
	}
}

func TestQuietPolicyWithoutSettingsStillAnswers(t *testing.T) {
	f := newFixture(types.TargetHealthStateEnumDraining)
	f.h.Policy = release.PolicyQuiet
	f.h.Settings = settings{}
	r := <-f.hold(context.Background(), terminatingPod(), time.Now().Add(time.Hour))
	if r.a.Handoff == nil || len(r.a.Handoff.Traffic.HealthChecks) != 0 || len(r.a.Handoff.Traffic.Ports) != 1 {
		t.Errorf("hold = %+v, want a hand-off without health checks", r.a)
	}
}

func TestAnUnreportedEndIsCounted(t *testing.T) {
	f := newFixture(types.TargetHealthStateEnumDraining)
	f.h.Policy, f.h.EndReportSlack = release.PolicyQuiet, time.Millisecond
	lost, reported := terminatingPod(), terminatingPod()
	lost.UID, reported.UID = "lost", "reported"
	// The reported hold's bound is long enough that its report comes first.
	for pod, bound := range map[*corev1.Pod]time.Duration{lost: 10 * time.Millisecond, reported: time.Hour} {
		if r := <-f.hold(context.Background(), pod, time.Now().Add(bound)); r.a.Handoff == nil {
			t.Fatalf("hold = %+v, want a hand-off", r.a)
		}
	}
	f.h.End(context.Background(), reported, contract.HoldEnd{Outcome: contract.OutcomeQuiet, HeldMillis: 1000, QuietMillis: 1000, Signal: contract.SignalSockDiag})
	if err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return testutil.ToFloat64(f.m.HoldEndsUnreported) > 0, nil
	}); err != nil {
		t.Fatalf("the lost report was never counted: %v", err)
	}
	f.h.handoffs.mu.Lock()
	pending := len(f.h.handoffs.pending)
	f.h.handoffs.mu.Unlock()
	if got := testutil.ToFloat64(f.m.HoldEndsUnreported); got != 1 || pending != 0 {
		t.Errorf("%v unreported ends and %d still awaited, want the lost one counted and none awaited", got, pending)
	}
	if f.h.handoffs.ended("lost") {
		t.Error("a report after the hold was counted unreported was still awaited")
	}
}

// A pod's outcome is counted once on a replica whatever reaches it after
// the first: here the watcher times the hold out and counts it, and then a
// helper's end report arrives for the same pod (TestELBv2Latency once saw
// both counted).
func TestOneOutcomePerPod(t *testing.T) {
	f := newFixture(types.TargetHealthStateEnumHealthy)
	pod := terminatingPod()
	if r := <-f.hold(context.Background(), pod, time.Now().Add(50*time.Millisecond)); r.a.Outcome() != contract.OutcomeTimeout {
		t.Fatalf("hold = %+v, want timeout", r.a)
	}
	f.h.End(context.Background(), pod, contract.HoldEnd{Outcome: contract.OutcomeBound, HeldMillis: 1000, QuietMillis: 1000, Signal: contract.SignalSockDiag})
	if r := <-f.hold(context.Background(), pod, time.Now().Add(50*time.Millisecond)); r.a.Outcome() != contract.OutcomeTimeout {
		t.Fatalf("retried hold = %+v, want timeout", r.a)
	}
	got := map[string]float64{}
	for _, o := range contract.Outcomes {
		if n := testutil.ToFloat64(f.m.Holds.WithLabelValues(string(o))); n != 0 {
			got[string(o)] = n
		}
	}
	if d := cmp.Diff(map[string]float64{"timeout": 1}, got); d != "" {
		t.Errorf("holds by outcome (-want +got):\n%s", d)
	}
	f.wantEvents(t, contract.ReasonHoldStarted, contract.ReasonHoldTimedOut, contract.ReasonHoldStarted)
}
