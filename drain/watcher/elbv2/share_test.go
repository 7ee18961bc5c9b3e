package elbv2

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/albdrain/albdrain/drain/watcher/metrics"
)

// drainingELB answers every DescribeTargetHealth at once, listing each
// target asked about as draining, and counts the calls and targets.
type drainingELB struct {
	calls atomic.Int64
	mu    sync.Mutex
	asked map[string]int // target ID -> calls naming it
}

func (d *drainingELB) DescribeTargetHealth(_ context.Context, in *awselbv2.DescribeTargetHealthInput, _ ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetHealthOutput, error) {
	d.calls.Add(1)
	out := &awselbv2.DescribeTargetHealthOutput{}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.asked == nil {
		d.asked = map[string]int{}
	}
	for _, t := range in.Targets {
		d.asked[aws.ToString(t.Id)]++
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, health(aws.ToString(t.Id), aws.ToInt32(t.Port), types.TargetHealthStateEnumDraining, types.TargetHealthReasonEnumDeregistrationInProgress))
	}
	return out, nil
}

// inProcess reaches another Poller directly, as the peers package does
// over HTTPS; fail makes it fail instead.
type inProcess struct {
	id     string
	reader string
	p      *Poller
	fail   atomic.Bool
	// deadline is the last Poll's.
	deadline atomic.Value
}

func (i *inProcess) ID() string { return i.id }

func (i *inProcess) Poll(ctx context.Context, tgARN string, targets []Target, after uint64) (SharedPoll, error) {
	if i.fail.Load() {
		return SharedPoll{}, errors.New("replica unreachable")
	}
	i.deadline.Store(deadlineOf(ctx))
	return i.p.Serve(ctx, i.reader, tgARN, targets, after)
}

func (i *inProcess) Release(_ context.Context, tgARN string, targets []Target) error {
	i.p.Release(i.reader, tgARN, targets)
	return nil
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// owners assigns every group to one peer (nil: this replica).
type owners struct{ peer Peer }

func (o owners) Owner(string) Peer { return o.peer }

func nextReport(t *testing.T, ch <-chan Report) Report {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no report")
		return Report{}
	}
}

func TestSharedGroupIsPolledOnce(t *testing.T) {
	ownerELB, readerELB := &drainingELB{}, &drainingELB{}
	owner := NewPoller(ownerELB, 10*time.Millisecond, metrics.New())
	m := metrics.New()
	reader := NewPoller(readerELB, 10*time.Millisecond, m)
	reader.Share(owners{peer: &inProcess{id: "owner", reader: "reader", p: owner}}, DefaultCallTimeout)

	// The owner's own hold and the reader's hold wait on one group.
	own, stopOwn := owner.Subscribe("arn:tg", Target{ID: "10.0.0.1", Port: 80})
	defer stopOwn()
	read, stopRead := reader.Subscribe("arn:tg", Target{ID: "10.0.0.2", Port: 80})
	defer stopRead()
	for range 3 {
		if r := nextReport(t, read); r.State != "draining" || r.Err != nil {
			t.Fatalf("reader's report %+v, want draining", r)
		}
		nextReport(t, own)
	}
	if n := readerELB.calls.Load(); n != 0 {
		t.Errorf("the reader called DescribeTargetHealth %d times, want 0: its owner polls the group", n)
	}
	ownerELB.mu.Lock()
	asked := ownerELB.asked["10.0.0.2"]
	ownerELB.mu.Unlock()
	if asked == 0 {
		t.Error("the owner never asked ELBv2 about the reader's target")
	}
	if got := testutil.ToFloat64(m.SharedPolls.WithLabelValues("read")); got < 3 {
		t.Errorf("shared polls read = %v, want at least 3", got)
	}
}

func TestUnreachableOwnerFallsBackToOwnPoll(t *testing.T) {
	readerELB := &drainingELB{}
	m := metrics.New()
	reader := NewPoller(readerELB, 10*time.Millisecond, m)
	peer := &inProcess{id: "owner", p: NewPoller(&drainingELB{}, 10*time.Millisecond, metrics.New())}
	peer.fail.Store(true)
	reader.Share(owners{peer: peer}, DefaultCallTimeout)
	read, stop := reader.Subscribe("arn:tg", Target{ID: "10.0.0.2", Port: 80})
	defer stop()
	if r := nextReport(t, read); r.State != "draining" {
		t.Fatalf("report %+v, want draining from the reader's own poll", r)
	}
	if readerELB.calls.Load() == 0 {
		t.Error("the reader did not poll the group itself")
	}
	if got := testutil.ToFloat64(m.SharedPolls.WithLabelValues("failed")); got < 1 {
		t.Errorf("shared polls failed = %v, want at least 1", got)
	}
}

// Two replicas that each think the other owns the group must not wait on
// each other: the one asked polls.
func TestReplicasThatDisagreeStillAnswer(t *testing.T) {
	aELB, bELB := &drainingELB{}, &drainingELB{}
	a := NewPoller(aELB, 10*time.Millisecond, metrics.New())
	b := NewPoller(bELB, 10*time.Millisecond, metrics.New())
	a.Share(owners{peer: &inProcess{id: "b", reader: "a", p: b}}, DefaultCallTimeout)
	b.Share(owners{peer: &inProcess{id: "a", reader: "b", p: a}}, DefaultCallTimeout)
	ra, stopA := a.Subscribe("arn:tg", Target{ID: "10.0.0.1", Port: 80})
	defer stopA()
	rb, stopB := b.Subscribe("arn:tg", Target{ID: "10.0.0.2", Port: 80})
	defer stopB()
	for range 3 {
		if r := nextReport(t, ra); r.State != "draining" {
			t.Fatalf("a's report %+v, want draining", r)
		}
		if r := nextReport(t, rb); r.State != "draining" {
			t.Fatalf("b's report %+v, want draining", r)
		}
	}
}

// A reader's targets stay in the owner's polls only while it asks: the
// owner's loop ends once the reader's lease lapses.
func TestLapsedReaderEndsOwnersLoop(t *testing.T) {
	m := metrics.New()
	owner := NewPoller(&drainingELB{}, 5*time.Millisecond, m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := owner.Serve(ctx, "reader", "arn:tg", []Target{{ID: "10.0.0.2", Port: 80}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r := got.Reports[Target{ID: "10.0.0.2", Port: 80}]; r.State != "draining" || got.Generation == 0 {
		t.Fatalf("Serve = %+v, want the target draining", got)
	}
	for testutil.ToFloat64(m.TargetGroupsWatched) != 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the owner still polls the group after the reader stopped asking")
		case <-time.After(5 * time.Millisecond):
		}
	}
}
