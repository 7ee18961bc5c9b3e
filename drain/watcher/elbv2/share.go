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
// cannot read the owner's answer polls the group itself at once, and keeps
// polling it itself for a while rather than wait on that owner again.

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
	// Release tells the replica that this one no longer waits on targets
	// in tgARN, so that it stops polling them for it.
	Release(ctx context.Context, tgARN string, targets []Target) error
}

// SharedPoll is one poll's answers, as a replica hands them to another.
type SharedPoll struct {
	// Generation counts the owner's polls of the group.
	Generation uint64
	Reports    map[Target]Report
}

// ErrLeaving is Serve's answer once the replica is stopping: the reader
// then polls for itself at once.
var ErrLeaving = errors.New("the replica is stopping and polls for no other")

// remoteTarget is a target other replicas asked about.
type remoteTarget struct {
	// since is the group's generation when it was added: polls completed
	// after it include the target.
	since uint64
	// readers are the replicas that asked, each with when its ask lapses
	// unless it asks again.
	readers map[string]time.Time
}

// peerCursor is how far a group's loop has read an owner's polls.
type peerCursor struct {
	peer  Peer
	after uint64
	// retry is when the peer is asked again after a failed read; until
	// then the group polls itself, so an owner that hangs or answers
	// late costs the holds one wait, not one each round.
	retry time.Time
}

// Share makes p poll only the target groups owners assigns to this replica,
// and read the others from their owners. callTimeout is the bound on one
// ELBv2 call (--aws-call-timeout), which an owner's answer may take on top
// of an interval.
func (p *Poller) Share(owners Owners, callTimeout time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left {
		return
	}
	p.owners, p.callTimeout = owners, callTimeout
}

// PeerWait is how long the owner of a group waits for its next poll before
// answering another replica's request: an interval, and one slow call.
// Readers wait an interval longer, for the request's own way there and
// back, so both follow one configuration.
func (p *Poller) PeerWait() time.Duration { return p.interval + p.callTimeout }

// Leave makes p poll every group itself and serve no other replica from
// now on: requests waiting in Serve are answered ErrLeaving at once, and the
// targets other replicas asked about are dropped. The replica calls it as
// its stop begins, so that no reader waits on a replica about to go.
func (p *Poller) Leave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left {
		return
	}
	p.left, p.owners = true, nil
	close(p.leaving)
	for _, g := range p.groups {
		clear(g.remote)
		if g.peerCancel != nil {
			g.peerCancel()
		}
		p.endIfIdleLocked(g)
	}
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
// group's polls: that replica asks again as soon as it has an answer, and
// releases the target when its last hold on it ends, so a lease lapses only
// when it could not say so (it died).
func (p *Poller) remoteLease() time.Duration { return 3 * p.interval }

// fromPeer delivers to g's holds the owner's next poll of their targets. It
// reports false when it could not, or g is this replica's to poll, and g's
// loop then polls itself.
func (p *Poller) fromPeer(ctx context.Context, g *group, cur *peerCursor) bool {
	peer := p.owner(g.arn)
	p.mu.Lock()
	subs, targets := g.subscribedLocked(0)
	if prev := g.reading; prev != nil && (peer == nil || prev.ID() != peer.ID()) {
		// The group moved (here, or to another owner): the last owner
		// need not poll these targets any more.
		g.reading = nil
		go p.release(prev, g.arn, targets)
	}
	// A group another replica asks about is polled here (see Serve).
	if peer == nil || len(subs) == 0 || len(g.remote) > 0 {
		p.mu.Unlock()
		return false
	}
	if cur.peer == nil || cur.peer.ID() != peer.ID() {
		*cur = peerCursor{peer: peer}
	}
	if time.Now().Before(cur.retry) {
		p.mu.Unlock()
		return false
	}
	g.reading = peer
	// The owner answers within PeerWait; beyond that it is not helping.
	callCtx, cancel := context.WithTimeout(ctx, p.PeerWait()+p.interval)
	defer cancel()
	g.peerCancel = cancel
	p.mu.Unlock()
	shared, err := peer.Poll(callCtx, g.arn, targets, cur.after)
	p.mu.Lock()
	g.peerCancel = nil
	reask := g.reask
	g.reask = false
	p.mu.Unlock()
	if ctx.Err() != nil || (reask && err != nil) {
		return true // the last hold left and the loop ends, or a new one came
	}
	if err == nil && shared.Generation <= cur.after {
		err = fmt.Errorf("replica %s answered generation %d after %d", peer.ID(), shared.Generation, cur.after)
	}
	if err != nil {
		p.metrics.SharedPolls.WithLabelValues("failed").Inc()
		*cur = peerCursor{peer: peer, retry: time.Now().Add(p.remoteLease())}
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

// release tells peer that this replica's holds no longer wait on targets in
// tgARN. It is best effort: what it cannot tell lapses by itself.
func (p *Poller) release(peer Peer, tgARN string, targets []Target) {
	if len(targets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.PeerWait())
	defer cancel()
	if peer.Release(ctx, tgARN, targets) != nil {
		p.metrics.SharedPolls.WithLabelValues("release_failed").Inc()
	}
}

// Serve polls targets in tgARN for the replica reader and returns the
// answers of the group's first poll that included them and completed after
// generation after. It waits for that poll until ctx ends, and answers
// ErrLeaving once p left (see Leave).
func (p *Poller) Serve(ctx context.Context, reader, tgARN string, targets []Target, after uint64) (SharedPoll, error) {
	p.mu.Lock()
	if p.left {
		p.mu.Unlock()
		return SharedPoll{}, ErrLeaving
	}
	g := p.groupLocked(tgARN)
	need := after
	// A poll in flight chose its targets already: a target added now is in
	// the one after it.
	next := max(g.gen, g.taken)
	lapses := time.Now().Add(p.remoteLease())
	for i, t := range targets {
		t.ID = canonicalID(t.ID)
		targets[i] = t
		r := g.remote[t]
		if r == nil {
			r = &remoteTarget{since: next, readers: map[string]time.Time{}}
			g.remote[t] = r
		}
		r.readers[reader] = lapses
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
		case <-p.leaving:
			return SharedPoll{}, ErrLeaving
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

// Release drops reader's asks about targets in tgARN: its holds on them
// ended. The group's loop ends once no hold waits on it here or elsewhere.
func (p *Poller) Release(reader, tgARN string, targets []Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.groups[tgARN]
	if g == nil {
		return
	}
	for _, t := range targets {
		t.ID = canonicalID(t.ID)
		if r := g.remote[t]; r != nil {
			delete(r.readers, reader)
			if len(r.readers) == 0 {
				delete(g.remote, t)
			}
		}
	}
	p.endIfIdleLocked(g)
}

// dropLapsedLocked forgets the asks of readers that stopped asking, and
// returns the targets still asked about. Poller.mu must be held.
func (g *group) dropLapsedLocked(now time.Time) []Target {
	var out []Target
	for t, r := range g.remote {
		for reader, lapses := range r.readers {
			if now.After(lapses) {
				delete(r.readers, reader)
			}
		}
		if len(r.readers) == 0 {
			delete(g.remote, t)
			continue
		}
		out = append(out, t)
	}
	return out
}
