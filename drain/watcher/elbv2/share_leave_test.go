package elbv2

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/albdrain/albdrain/drain/watcher/metrics"
)

// never is a poll interval no test waits out: anything a test sees after
// the first poll came from the event it caused, not from a tick.
const never = time.Hour

// waitFor waits until cond holds, for at most 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not so after 20s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// remoteOf lists the targets other replicas ask p to poll in tgARN.
func remoteOf(p *Poller, tgARN string) []Target {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.groups[tgARN]
	if g == nil {
		return nil
	}
	var out []Target
	for t := range g.remote {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Target) int { return compareTargets(a, b) })
	return out
}

func compareTargets(a, b Target) int {
	if a.ID != b.ID {
		if a.ID < b.ID {
			return -1
		}
		return 1
	}
	return int(a.Port - b.Port)
}

// A reader's ask ends with its last hold on the target, not when its lease
// lapses: the owner stops polling targets nobody waits for.
func TestReleasedTargetLeavesOwnersPolls(t *testing.T) {
	ownerMetrics := metrics.New()
	owner := NewPoller(&drainingELB{}, never, ownerMetrics)
	reader := NewPoller(&drainingELB{}, never, metrics.New())
	reader.Share(owners{peer: &inProcess{id: "owner", reader: "reader", p: owner}}, DefaultCallTimeout)
	a, b := Target{ID: "10.0.0.1", Port: 80}, Target{ID: "10.0.0.2", Port: 80}

	ra, stopA := reader.Subscribe("arn:tg", a)
	defer stopA()
	if r := nextReport(t, ra); r.State != "draining" {
		t.Fatalf("report %+v, want draining from the owner's first poll", r)
	}
	_, stopB := reader.Subscribe("arn:tg", b)
	defer stopB()
	waitFor(t, "the owner polls both targets", func() bool { return slices.Equal(remoteOf(owner, "arn:tg"), []Target{a, b}) })

	stopA()
	waitFor(t, "the owner drops the released target", func() bool { return slices.Equal(remoteOf(owner, "arn:tg"), []Target{b}) })
	stopB()
	waitFor(t, "the owner stops polling the group", func() bool { return testutil.ToFloat64(ownerMetrics.TargetGroupsWatched) == 0 })
}

// An owner that leaves (its stop began) answers the readers waiting on it
// at once, and they poll for themselves: no hold waits on a stopping owner.
func TestLeavingOwnerAnswersReadersAtOnce(t *testing.T) {
	ownerMetrics := metrics.New()
	owner := NewPoller(&drainingELB{}, never, ownerMetrics)
	readerELB := &drainingELB{}
	reader := NewPoller(readerELB, never, metrics.New())
	// Neither side's bound ends the wait within the test.
	reader.Share(owners{peer: &inProcess{id: "owner", reader: "reader", p: owner}}, never)
	ra, stop := reader.Subscribe("arn:tg", Target{ID: "10.0.0.1", Port: 80})
	defer stop()
	nextReport(t, ra)
	if n := readerELB.calls.Load(); n != 0 {
		t.Fatalf("the reader polled %d times before the owner left, want 0", n)
	}

	owner.Leave()
	if r := nextReport(t, ra); r.State != "draining" {
		t.Fatalf("report %+v, want draining from the reader's own poll", r)
	}
	if n := readerELB.calls.Load(); n != 1 {
		t.Errorf("the reader polled %d times after the owner left, want 1", n)
	}
	waitFor(t, "the owner that left polls nothing", func() bool { return testutil.ToFloat64(ownerMetrics.TargetGroupsWatched) == 0 })
	if _, err := owner.Serve(context.Background(), "reader", "arn:tg", []Target{{ID: "10.0.0.1", Port: 80}}, 0); !errors.Is(err, ErrLeaving) {
		t.Errorf("Serve after Leave = %v, want ErrLeaving", err)
	}
}

// The reader's wait on its owner follows --aws-call-timeout as the owner's
// does (PeerWait), not a fixed default.
func TestReaderWaitFollowsCallTimeout(t *testing.T) {
	const callTimeout = 40 * time.Second
	owner := NewPoller(&drainingELB{}, 10*time.Millisecond, metrics.New())
	reader := NewPoller(&drainingELB{}, 10*time.Millisecond, metrics.New())
	peer := &inProcess{id: "owner", reader: "reader", p: owner}
	reader.Share(owners{peer: peer}, callTimeout)
	if got, want := reader.PeerWait(), 10*time.Millisecond+callTimeout; got != want {
		t.Errorf("PeerWait = %v, want %v", got, want)
	}
	asked := time.Now()
	r, stop := reader.Subscribe("arn:tg", Target{ID: "10.0.0.1", Port: 80})
	defer stop()
	nextReport(t, r)
	if d := peer.deadline.Load().(time.Time).Sub(asked); d < callTimeout {
		t.Errorf("the reader waits at most %v on its owner, want over the call timeout %v", d, callTimeout)
	}
}

// firstBlocks blocks its first DescribeTargetHealth until unblock is
// closed, and answers the others at once.
type firstBlocks struct {
	drainingELB
	once             sync.Once
	entered, unblock chan struct{}
}

func (f *firstBlocks) DescribeTargetHealth(ctx context.Context, in *awselbv2.DescribeTargetHealthInput, o ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetHealthOutput, error) {
	first := false
	f.once.Do(func() { first = true })
	if first {
		close(f.entered)
		<-f.unblock
	}
	return f.drainingELB.DescribeTargetHealth(ctx, in, o...)
}

// A target asked about while a poll is in flight is answered from the next
// poll, which names it, not from the one in flight, which does not.
func TestTargetAskedMidPollIsAnsweredFromTheNext(t *testing.T) {
	api := &firstBlocks{entered: make(chan struct{}), unblock: make(chan struct{})}
	owner := NewPoller(api, 10*time.Millisecond, metrics.New())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := Target{ID: "10.0.0.1", Port: 80}, Target{ID: "10.0.0.2", Port: 80}
	go func() { _, _ = owner.Serve(ctx, "r1", "arn:tg", []Target{a}, 0) }()
	<-api.entered
	type answer struct {
		p   SharedPoll
		err error
	}
	got := make(chan answer, 1)
	go func() {
		p, err := owner.Serve(ctx, "r2", "arn:tg", []Target{b}, 0)
		got <- answer{p, err}
	}()
	waitFor(t, "b is asked about", func() bool { return len(remoteOf(owner, "arn:tg")) == 2 })
	close(api.unblock)
	ans := <-got
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	if r, ok := ans.p.Reports[b]; !ok || r.State != "draining" {
		t.Errorf("answer %+v: want b draining, from a poll that named it", ans.p)
	}
}
