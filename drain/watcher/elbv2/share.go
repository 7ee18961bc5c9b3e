// Replicas share the polling of a target group: one replica, its owner,
// polls it for every replica's holds, and the others read its answers. So
// the account's Describe* budget, which the load balancer controller draws
// on too, pays for each target group with holds once per interval however
// many replicas serve them.
//
// Ownership is only an optimisation. A replica asked about a group polls it,
// whether or not it thinks it owns it, and never forwards the question, so
// replicas that disagree for a moment (one sees a new replica, another not
// yet) poll a group twice but never wait on each other. A replica that
// cannot read the owner's answer polls the group itself that round.

package elbv2

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Owners names the replica that polls a target group.
type Owners interface {
	// Owner is the replica that polls tgARN, or nil when it is this one.
	Owner(tgARN string) Peer
}

// Peer is another replica's poller as this one reaches it.
type Peer interface {
	// ID names the replica, so that a cursor from one is never sent to
	// another.
	ID() string
	// Poll asks the replica to poll targets in tgARN for this one and
	// returns the answers of its first poll that included them and
	// completed after generation after.
	Poll(ctx context.Context, tgARN string, targets []Target, after uint64) (SharedPoll, error)
}

// SharedPoll is one poll's answers, as a replica hands them to another.
type SharedPoll struct {
	// Generation counts the owner's polls of the group.
	Generation uint64
	Reports    map[Target]Report
}

// remoteTarget is a target another replica asked about.
type remoteTarget struct {
	// since is the group's generation when it was added: polls after it
	// include the target.
	since uint64
	// lapses is when the group stops polling it unless asked again.
	lapses time.Time
}

// peerCursor is how far a group's loop has read an owner's polls.
type peerCursor struct {
	peer  string
	after uint64
}

// Share makes p poll only the target groups owners assigns to this replica,
// and read the others from their owners.
func (p *Poller) Share(owners Owners) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.owners = owners
}

func (p *Poller) owner(tgARN string) Peer {
	p.mu.Lock()
	owners := p.owners
	p.mu.Unlock()
	if owners == nil {
		return nil
	}
	return owners.Owner(tgARN)
}

// remoteLease is how long a target another replica asked about stays in the
// group's polls: that replica asks again as soon as it has an answer, so a
// lease lapses only when it stopped asking (its holds ended, or it died).
func (p *Poller) remoteLease() time.Duration { return 3 * p.interval }

// fromPeer delivers to g's holds the owner's next poll of their targets. It
// reports false when it could not, and g's loop then polls itself.
func (p *Poller) fromPeer(ctx context.Context, g *group, peer Peer, cur *peerCursor) bool {
	p.mu.Lock()
	subs, targets := g.subscribedLocked(0)
	// A group another replica asks about is polled here (see Serve).
	if len(subs) == 0 || len(g.remote) > 0 {
		p.mu.Unlock()
		return false
	}
	// The owner answers after its next poll, at most an interval away, or
	// after a slow call: beyond that it is not helping.
	callCtx, cancel := context.WithTimeout(ctx, 2*p.interval+DefaultCallTimeout)
	defer cancel()
	g.peerCancel = cancel
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		g.peerCancel = nil
		p.mu.Unlock()
	}()
	if cur.peer != peer.ID() {
		*cur = peerCursor{peer: peer.ID()}
	}
	shared, err := peer.Poll(callCtx, g.arn, targets, cur.after)
	if ctx.Err() != nil {
		return true // the last hold left; the loop ends
	}
	if err == nil && shared.Generation <= cur.after {
		err = fmt.Errorf("replica %s answered generation %d after %d", peer.ID(), shared.Generation, cur.after)
	}
	if err != nil {
		p.metrics.SharedPolls.WithLabelValues("failed").Inc()
		*cur = peerCursor{}
		return false
	}
	p.metrics.SharedPolls.WithLabelValues("read").Inc()
	cur.after = shared.Generation
	for _, s := range subs {
		r, ok := shared.Reports[s.target]
		if !ok {
			// Never read a missing answer as "not listed", which ends a
			// hold: it is a failed poll, like any other.
			r = Report{Err: errors.New("the polling replica did not report the target")}
		}
		deliver(s.ch, r)
	}
	return true
}

// Serve polls targets in tgARN for another replica and returns the answers
// of the group's first poll that included them and completed after
// generation after. It waits for that poll until ctx ends.
func (p *Poller) Serve(ctx context.Context, tgARN string, targets []Target, after uint64) (SharedPoll, error) {
	p.mu.Lock()
	g := p.groupLocked(tgARN)
	need := after
	lapses := time.Now().Add(p.remoteLease())
	for i, t := range targets {
		t.ID = canonicalID(t.ID)
		targets[i] = t
		r, ok := g.remote[t]
		if !ok {
			r.since = g.gen
		}
		r.lapses = lapses
		g.remote[t] = r
		need = max(need, r.since)
	}
	// Two replicas that each think the other owns the group would wait on
	// each other: the one asked stops waiting and polls.
	if g.peerCancel != nil {
		g.peerCancel()
	}
	for g.gen <= need {
		polled := g.polled
		p.mu.Unlock()
		select {
		case <-polled:
		case <-ctx.Done():
			return SharedPoll{}, ctx.Err()
		}
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	out := SharedPoll{Generation: g.gen, Reports: make(map[Target]Report, len(targets))}
	for _, t := range targets {
		if r, ok := g.last[t]; ok {
			out.Reports[t] = r
		}
	}
	return out, nil
}
