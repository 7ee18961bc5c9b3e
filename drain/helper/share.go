package helper

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// A pod has one hold whatever its number of held containers: the kubelet
// runs every container's preStop at once, and their helpers elect one of
// them, the leader, to ask the watcher. The others follow: they take the
// leader's answer, wait for quiet on their own ports, and tell the leader
// how that ended, and the leader reports the pod's end once. The watcher
// then sees one request stream per pod, so it runs one hold, counts one
// outcome and never refuses a fifth container with 429.
//
// The helpers of a pod share its network namespace, so they meet on an
// abstract unix socket named after the pod's UID: no file, nothing to clean
// up, and a leader that dies frees the name, so a follower left without an
// answer becomes the next leader. Outside Linux every helper asks alone.

// shareName prefixes the pod UID in the abstract socket's name.
const shareName = "@albdrain-hold/"

// maxElections bounds the rounds of trying to lead or follow, each of
// which only fails when a leader went away between the two.
const maxElections = 20

// leader is the side of the pod's hold that asks the watcher.
type leader struct {
	ln       net.Listener
	mu       sync.Mutex
	answer   *contract.Answer
	answered time.Time
	conns    []net.Conn
}

// lead makes this helper the pod's leader. busy is true when another
// helper of the pod leads; both are zero when there is nothing to share.
func lead(uid string) (l *leader, busy bool) {
	if runtime.GOOS != "linux" || uid == "" {
		return nil, false
	}
	ln, err := net.Listen("unix", shareName+uid)
	if err != nil {
		return nil, errors.Is(err, syscall.EADDRINUSE)
	}
	l = &leader{ln: ln}
	go l.accept()
	return l, false
}

func (l *leader) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		l.conns = append(l.conns, c)
		if l.answer != nil {
			l.send(c)
		}
		l.mu.Unlock()
	}
}

// publish hands the watcher's answer to every follower, now and later.
func (l *leader) publish(a contract.Answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answer, l.answered = &a, time.Now()
	for _, c := range l.conns {
		l.send(c)
	}
}

// send writes the answer to c, its bound shortened by the time since it
// came. l.mu is held.
func (l *leader) send(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = json.NewEncoder(c).Encode(l.answer.Later(time.Since(l.answered)))
}

// gather stops taking followers and collects how each one's quiet wait
// ended, until ctx ends; a follower that went away counts for nothing.
func (l *leader) gather(ctx context.Context) []contract.HoldEnd {
	l.ln.Close()
	l.mu.Lock()
	conns := slices.Clone(l.conns)
	l.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			_ = c.SetReadDeadline(time.Now())
		}
	})
	defer stop()
	var out []contract.HoldEnd
	for _, c := range conns {
		var r contract.HoldEnd
		if json.NewDecoder(c).Decode(&r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// close ends the pod's hold for the followers still connected.
func (l *leader) close() {
	l.ln.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

// follow takes the answer of the pod's leader; ok is false when there is
// no leader, or it went away before it answered.
func follow(ctx context.Context, uid string) (c net.Conn, a contract.Answer, ok bool) {
	c, err := (&net.Dialer{}).DialContext(ctx, "unix", shareName+uid)
	if err != nil {
		return nil, a, false
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	defer stop()
	if err := json.NewDecoder(c).Decode(&a); err != nil {
		c.Close()
		return nil, a, false
	}
	return c, a, true
}

// holdOfPod is this helper's part in its pod's hold: leading it, following
// it, or alone.
type holdOfPod struct {
	leader *leader
	// toLeader is a follower's connection to its leader.
	toLeader net.Conn
}

// askOnce gets the answer to the pod's hold: from the watcher, as the
// pod's leader or alone, or from the leader as a follower.
func askOnce(ctx context.Context, env Env, spec contract.Spec, opts Options) (contract.Answer, holdOfPod) {
	for range maxElections {
		l, busy := lead(env.PodUID)
		if !busy {
			a := askWatcher(ctx, env, spec.Budget, opts)
			if l != nil {
				l.publish(a)
			}
			return a, holdOfPod{leader: l}
		}
		if c, a, ok := follow(ctx, env.PodUID); ok {
			opts.Log.Info("another container's helper holds the pod; following its answer")
			return a, holdOfPod{toLeader: c}
		}
		if ctx.Err() != nil {
			return contract.NewFinal(contract.OutcomeTimeout, "max-hold reached", contract.Wait{}), holdOfPod{}
		}
		sleep(ctx, opts.RetryBackoff)
	}
	return askWatcher(ctx, env, spec.Budget, opts), holdOfPod{}
}

// end finishes this helper's part once its quiet wait ended with res, and
// says how the pod's ended: a follower tells its leader, and a leader
// waits, until ctx ends, for its followers, whose quiet the pod's needs.
func (p holdOfPod) end(ctx context.Context, res contract.HoldEnd) contract.HoldEnd {
	switch {
	case p.toLeader != nil:
		_ = p.toLeader.SetWriteDeadline(time.Now().Add(time.Second))
		_ = json.NewEncoder(p.toLeader).Encode(res)
		p.toLeader.Close()
	case p.leader != nil:
		for _, f := range p.leader.gather(ctx) {
			res.Quiet = res.Quiet && f.Quiet
			res.QuietMillis = max(res.QuietMillis, f.QuietMillis)
		}
		p.leader.close()
	}
	return res
}

// release lets followers go without waiting for them, for an answer that
// needs no quiet wait.
func (p holdOfPod) release() {
	switch {
	case p.toLeader != nil:
		p.toLeader.Close()
	case p.leader != nil:
		p.leader.close()
	}
}
