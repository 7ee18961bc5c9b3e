// The poller asks ELBv2 about held pods' targets. There is one poll loop
// per target group, shared by every hold waiting on that group: each
// interval it sends one DescribeTargetHealth naming all of their targets and
// hands each hold its own target's answer. A loop runs only while some hold
// waits on its group, so the API cost grows with the number of target
// groups being drained, not with the number of pods.

package elbv2

import (
	"cmp"
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/albdrain/albdrain/drain/watcher/metrics"
)

// DescribeAPI is the part of the ELBv2 client the poller uses.
type DescribeAPI interface {
	DescribeTargetHealth(ctx context.Context, in *awselbv2.DescribeTargetHealthInput, optFns ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetHealthOutput, error)
}

// Target is an ip target: the pod IP and the port it is registered on.
type Target struct {
	ID   string
	Port int32
}

// Report is one poll's answer about one target.
type Report struct {
	// Err is set when the poll failed; the other fields are then empty.
	Err error
	// State is the target's state, empty when ELBv2 did not list it.
	State string
	// Reason is ELBv2's reason code for State, for logs and events.
	Reason string
	// GroupGone is set when the target group no longer exists.
	GroupGone bool
}

// Poller runs the per-target-group poll loops. Its methods are safe for
// concurrent use.
type Poller struct {
	api      DescribeAPI
	interval time.Duration
	metrics  *metrics.Metrics

	mu sync.Mutex
	// owners, when set, names the replica that polls each target group for
	// all replicas (share.go); nil polls every group here.
	owners Owners
	// callTimeout bounds one ELBv2 call, which a peer's answer may wait on.
	callTimeout time.Duration
	// left is set, and leaving closed, once the replica stops sharing.
	left    bool
	leaving chan struct{}
	groups  map[string]*group
}

// NewPoller returns a poller that polls each watched target group every interval.
func NewPoller(api DescribeAPI, interval time.Duration, m *metrics.Metrics) *Poller {
	return &Poller{api: api, interval: interval, metrics: m, groups: map[string]*group{}, leaving: make(chan struct{}), callTimeout: DefaultCallTimeout}
}

type group struct {
	arn    string
	cancel context.CancelFunc
	// The fields below are guarded by Poller.mu.
	subs map[*subscription]struct{}
	// remote are the targets other replicas asked this one to poll for
	// them (share.go), with when each was added and who asked.
	remote map[Target]*remoteTarget
	// gen counts this group's completed polls; polled is closed and
	// replaced when one completes, and last holds its answers. taken is
	// the generation of the latest poll whose targets were chosen.
	gen, taken uint64
	polled     chan struct{}
	last       map[Target]Report
	// peerCancel, set while the loop reads the group from its owner, stops
	// that read.
	peerCancel context.CancelFunc
	// reading is the owner the loop last read the group from, which is
	// told when a target's last hold here ends.
	reading Peer
	// reask is set when peerCancel stopped the read for a new target,
	// which the loop then asks the owner about at once.
	reask bool
}

type subscription struct {
	target Target
	// ch holds the latest report; older ones are dropped unread because
	// only the newest state matters.
	ch chan Report
}

// Subscribe subscribes to reports about target in the target group tgARN. The
// first report comes from the group's next poll (at once if the group was
// not being polled). Call stop when done; the group's loop ends with its
// last subscriber.
func (p *Poller) Subscribe(tgARN string, target Target) (reports <-chan Report, stop func()) {
	target.ID = canonicalID(target.ID)
	s := &subscription{target: target, ch: make(chan Report, 1)}
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.groupLocked(tgARN)
	if g.peerCancel != nil && !g.watchesLocked(target) {
		// The owner is asked about the new target at once, not after
		// the poll the loop waits for, which does not name it.
		g.reask = true
		g.peerCancel()
	}
	g.subs[s] = struct{}{}
	return s.ch, sync.OnceFunc(func() { p.unsubscribe(g, s) })
}

// groupLocked returns tgARN's group, starting its loop if it has none.
func (p *Poller) groupLocked(tgARN string) *group {
	if g := p.groups[tgARN]; g != nil {
		return g
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &group{arn: tgARN, cancel: cancel, subs: map[*subscription]struct{}{}, remote: map[Target]*remoteTarget{}, polled: make(chan struct{})}
	p.groups[tgARN] = g
	p.metrics.WatchGroup(tgARN)
	go p.loop(ctx, g)
	return g
}

func (p *Poller) unsubscribe(g *group, s *subscription) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(g.subs, s)
	if g.reading != nil && !g.watchesLocked(s.target) {
		go p.release(g.reading, g.arn, []Target{s.target})
	}
	p.endIfIdleLocked(g)
}

// watchesLocked reports whether a hold here still waits on t. Poller.mu
// must be held.
func (g *group) watchesLocked(t Target) bool {
	for s := range g.subs {
		if s.target == t {
			return true
		}
	}
	return false
}

// endIfIdleLocked ends g's loop once neither a hold here nor another
// replica waits on it.
func (p *Poller) endIfIdleLocked(g *group) {
	if len(g.subs) > 0 || len(g.remote) > 0 || p.groups[g.arn] != g {
		return
	}
	g.cancel()
	delete(p.groups, g.arn)
	p.metrics.UnwatchGroup(g.arn)
}

func (p *Poller) loop(ctx context.Context, g *group) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	var from peerCursor
	for {
		// A group another replica polls is read from it, paced by its
		// polls; any failure there falls back to this round's own poll,
		// so sharing never leaves a hold without answers.
		if p.fromPeer(ctx, g, &from) {
			continue
		}
		p.poll(ctx, g)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll sends one DescribeTargetHealth for every target subscribed now, here
// or by another replica, and delivers the answers. Targets are
// deduplicated: two replicas of the same pod's retried hold ask about one
// target.
func (p *Poller) poll(ctx context.Context, g *group) {
	subs, targets := p.pollSet(g)
	if len(targets) == 0 {
		return
	}
	in := &awselbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(g.arn)}
	for _, t := range targets {
		in.Targets = append(in.Targets, types.TargetDescription{Id: aws.String(t.ID), Port: aws.Int32(t.Port)})
	}
	out, err := p.api.DescribeTargetHealth(ctx, in)
	if ctx.Err() != nil {
		return // the last hold left mid-poll; nobody is listening
	}
	byTarget := map[Target]Report{}
	var notFound *types.TargetGroupNotFoundException
	switch {
	case errors.As(err, &notFound):
		for _, t := range targets {
			byTarget[t] = Report{GroupGone: true}
		}
	case err != nil:
		for _, t := range targets {
			byTarget[t] = Report{Err: err}
		}
	default:
		for _, t := range targets {
			byTarget[t] = Report{} // not listed: ELBv2 no longer knows the target
		}
		for _, d := range out.TargetHealthDescriptions {
			if d.Target == nil || d.TargetHealth == nil {
				continue
			}
			t := Target{ID: canonicalID(aws.ToString(d.Target.Id)), Port: aws.ToInt32(d.Target.Port)}
			byTarget[t] = Report{State: string(d.TargetHealth.State), Reason: string(d.TargetHealth.Reason)}
		}
	}
	p.completed(g, byTarget)
	for _, s := range subs {
		deliver(s.ch, byTarget[s.target])
	}
}

// pollSet is what the group's next poll asks about: its subscriptions, and
// the sorted, deduplicated targets of those and of other replicas' live
// requests. Lapsed requests are dropped here.
func (p *Poller) pollSet(g *group) ([]*subscription, []Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	subs, targets := g.subscribedLocked(len(g.remote))
	targets = append(targets, g.dropLapsedLocked(time.Now())...)
	p.endIfIdleLocked(g)
	if len(targets) > 0 {
		g.taken = g.gen + 1
	}
	slices.SortFunc(targets, func(a, b Target) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Port, b.Port))
	})
	return subs, slices.Compact(targets)
}

// subscribedLocked lists g's subscriptions and their targets, with room for
// extra more targets. Poller.mu must be held.
func (g *group) subscribedLocked(extra int) ([]*subscription, []Target) {
	subs := make([]*subscription, 0, len(g.subs))
	targets := make([]Target, 0, len(g.subs)+extra)
	for s := range g.subs {
		subs = append(subs, s)
		targets = append(targets, s.target)
	}
	return subs, targets
}

// completed records a poll's answers for other replicas waiting on them.
func (p *Poller) completed(g *group, byTarget map[Target]Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g.gen++
	g.last = byTarget
	close(g.polled)
	g.polled = make(chan struct{})
}

func deliver(ch chan Report, r Report) {
	select {
	case <-ch:
	default:
	}
	ch <- r
}

// canonicalID spells an IP target one way, so that a pod IP and ELBv2's
// answer name the same target however each writes it (IPv6 has many
// spellings: zeros compressed or not, upper or lower case, IPv4-mapped).
func canonicalID(id string) string {
	if a, err := netip.ParseAddr(id); err == nil {
		return a.Unmap().String()
	}
	return id
}
