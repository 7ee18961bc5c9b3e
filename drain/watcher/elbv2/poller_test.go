package elbv2

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/albdrain/albdrain/drain/watcher/metrics"
)

// fakeAPI hands each DescribeTargetHealth to the test, which answers it.
type fakeAPI struct {
	calls chan call
}

type call struct {
	ctx   context.Context
	in    *awselbv2.DescribeTargetHealthInput
	reply chan result
}

type result struct {
	out *awselbv2.DescribeTargetHealthOutput
	err error
}

func (f *fakeAPI) DescribeTargetHealth(ctx context.Context, in *awselbv2.DescribeTargetHealthInput, _ ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetHealthOutput, error) {
	c := call{ctx: ctx, in: in, reply: make(chan result, 1)}
	select {
	case f.calls <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeAPI) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no DescribeTargetHealth call")
		return call{}
	}
}

func health(id string, port int32, state types.TargetHealthStateEnum, reason types.TargetHealthReasonEnum) types.TargetHealthDescription {
	return types.TargetHealthDescription{
		Target:       &types.TargetDescription{Id: aws.String(id), Port: aws.Int32(port)},
		TargetHealth: &types.TargetHealth{State: state, Reason: reason},
	}
}

func requested(in *awselbv2.DescribeTargetHealthInput) []Target {
	var out []Target
	for _, t := range in.Targets {
		out = append(out, Target{ID: aws.ToString(t.Id), Port: aws.ToInt32(t.Port)})
	}
	return out
}

func receive(t *testing.T, ch <-chan Report) Report {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no report")
		return Report{}
	}
}

// newPoller polls on a long interval so only the first poll and the ones
// the test triggers by waiting happen.
func newPoller(interval time.Duration) (*Poller, *fakeAPI, *metrics.Metrics) {
	api := &fakeAPI{calls: make(chan call)}
	m := metrics.New()
	return NewPoller(api, interval, m), api, m
}

func TestOnePollServesEveryTargetOfAGroup(t *testing.T) {
	p, api, m := newPoller(time.Millisecond)
	a, stopA := p.Subscribe("tg-1", Target{ID: "10.0.0.1", Port: 8080})
	defer stopA()

	// The first poll carries only a; b joins while it is outstanding.
	first := api.next(t)
	b, stopB := p.Subscribe("tg-1", Target{ID: "10.0.0.2", Port: 8080})
	defer stopB()
	// Duplicate subscriptions (a retried hold) share the target.
	a2, stopA2 := p.Subscribe("tg-1", Target{ID: "10.0.0.1", Port: 8080})
	defer stopA2()
	first.reply <- result{out: &awselbv2.DescribeTargetHealthOutput{TargetHealthDescriptions: []types.TargetHealthDescription{
		health("10.0.0.1", 8080, types.TargetHealthStateEnumHealthy, ""),
	}}}
	if diff := cmp.Diff(Report{State: "healthy"}, receive(t, a)); diff != "" {
		t.Errorf("a's first report (-want +got):\n%s", diff)
	}

	second := api.next(t)
	want := []Target{{ID: "10.0.0.1", Port: 8080}, {ID: "10.0.0.2", Port: 8080}}
	if diff := cmp.Diff(want, requested(second.in)); diff != "" {
		t.Errorf("second poll's targets (-want +got):\n%s", diff)
	}
	if got := aws.ToString(second.in.TargetGroupArn); got != "tg-1" {
		t.Errorf("polled %q, want tg-1", got)
	}
	second.reply <- result{out: &awselbv2.DescribeTargetHealthOutput{TargetHealthDescriptions: []types.TargetHealthDescription{
		health("10.0.0.1", 8080, types.TargetHealthStateEnumDraining, types.TargetHealthReasonEnumDeregistrationInProgress),
		// b is not listed: absent.
	}}}
	if diff := cmp.Diff(Report{State: "draining", Reason: "Target.DeregistrationInProgress"}, receive(t, a)); diff != "" {
		t.Errorf("a's second report (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Report{State: "draining", Reason: "Target.DeregistrationInProgress"}, receive(t, a2)); diff != "" {
		t.Errorf("a2's report (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Report{}, receive(t, b)); diff != "" {
		t.Errorf("b's report (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(m.TargetGroupsWatched); got != 1 {
		t.Errorf("target groups watched = %v, want 1", got)
	}
}

func TestGroupsPollSeparatelyAndStopWithTheirLastHold(t *testing.T) {
	p, api, m := newPoller(time.Hour)
	_, stop1 := p.Subscribe("tg-1", Target{ID: "10.0.0.1", Port: 80})
	c1 := api.next(t)
	_, stop2 := p.Subscribe("tg-2", Target{ID: "10.0.0.1", Port: 80})
	c2 := api.next(t)
	if got := testutil.ToFloat64(m.TargetGroupsWatched); got != 2 {
		t.Errorf("target groups watched = %v, want 2", got)
	}
	stop1()
	stop1() // idempotent
	if err := c1.ctx.Err(); err == nil {
		t.Error("tg-1's poll still running after its only hold left")
	}
	if err := c2.ctx.Err(); err != nil {
		t.Error("tg-2's poll cancelled by another group's hold leaving")
	}
	if got := testutil.CollectAndCount(m.WatchedTargetGroups); got != 1 {
		t.Errorf("%d target-group series after tg-1's last hold, want 1 (tg-2)", got)
	}
	stop2()
	if got := testutil.ToFloat64(m.TargetGroupsWatched); got != 0 {
		t.Errorf("target groups watched = %v, want 0", got)
	}
}

func TestErrorsAndMissingGroups(t *testing.T) {
	p, api, _ := newPoller(time.Millisecond)
	ch, stop := p.Subscribe("tg-1", Target{ID: "10.0.0.1", Port: 80})
	defer stop()

	boom := errors.New("boom")
	api.next(t).reply <- result{err: boom}
	if r := receive(t, ch); !errors.Is(r.Err, boom) {
		t.Errorf("report after a failed poll = %+v, want the error", r)
	}
	api.next(t).reply <- result{err: &types.TargetGroupNotFoundException{Message: aws.String("gone")}}
	if diff := cmp.Diff(Report{GroupGone: true}, receive(t, ch)); diff != "" {
		t.Errorf("report for a deleted group (-want +got):\n%s", diff)
	}
}

func TestSlowReaderGetsTheLatestReport(t *testing.T) {
	p, api, _ := newPoller(time.Millisecond)
	ch, stop := p.Subscribe("tg-1", Target{ID: "10.0.0.1", Port: 80})
	defer stop()
	for _, s := range []types.TargetHealthStateEnum{types.TargetHealthStateEnumHealthy, types.TargetHealthStateEnumDraining} {
		api.next(t).reply <- result{out: &awselbv2.DescribeTargetHealthOutput{TargetHealthDescriptions: []types.TargetHealthDescription{health("10.0.0.1", 80, s, "")}}}
	}
	// The third call proves the second report was delivered before we read.
	third := api.next(t)
	if got := receive(t, ch); got.State != "draining" {
		t.Errorf("read %q, want the latest state draining", got.State)
	}
	third.reply <- result{out: &awselbv2.DescribeTargetHealthOutput{}}
}

// TestIPv6SpellingsNameOneTarget checks that a target is matched by address,
// not by how the pod's status and ELBv2 happen to spell it.
func TestIPv6SpellingsNameOneTarget(t *testing.T) {
	p, api, _ := newPoller(time.Hour)
	tests := []struct{ pod, elb string }{
		{"2001:db8:0:0:0:0:0:1", "2001:db8::1"},
		{"2001:DB8::A", "2001:db8::a"},
		{"2001:db8::b", "2001:0db8:0000::000b"},
		{"::ffff:10.0.0.7", "10.0.0.7"},
	}
	for _, tc := range tests {
		reports, stop := p.Subscribe("tg-v6", Target{ID: tc.pod, Port: 8080})
		c := api.next(t)
		c.reply <- result{out: &awselbv2.DescribeTargetHealthOutput{TargetHealthDescriptions: []types.TargetHealthDescription{
			health(tc.elb, 8080, types.TargetHealthStateEnumDraining, types.TargetHealthReasonEnumDeregistrationInProgress),
		}}}
		if diff := cmp.Diff(Report{State: "draining", Reason: "Target.DeregistrationInProgress"}, receive(t, reports)); diff != "" {
			t.Errorf("pod IP %s, ELBv2 lists %s (-want +got):\n%s", tc.pod, tc.elb, diff)
		}
		stop()
	}
}
