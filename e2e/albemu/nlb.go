package albemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// NLBListener is a TCP listener forwarding flows to a TCP target group,
// like a Network Load Balancer's. Each client connection is a flow, spread
// over the nodes in turn and forwarded to a target its node picks. Unlike
// an ALB, a deregistered target keeps its established flows while it
// drains; only new flows stop, after each node's lag. When the delay ends
// they are closed only if the target group's
// deregistration_delay.connection_termination.enabled is "true".
type NLBListener struct {
	e      *Emulator
	tg     *targetGroup
	ln     net.Listener
	spread atomic.Uint64

	mu        sync.Mutex
	flows     map[net.Conn]struct{} // client sides, closed on Close
	closeOnce sync.Once
	closeErr  error
}

// AddNLBListener starts a TCP listener on addr ("" means 127.0.0.1:0) that
// forwards flows to a TCP target group.
func (e *Emulator) AddNLBListener(tgARN, addr string) (*NLBListener, error) {
	if addr == "" {
		addr = defaultListenAddr
	}
	e.mu.Lock()
	tg, apiErr := e.groupLocked(tgARN)
	e.mu.Unlock()
	if apiErr != nil {
		return nil, apiErr
	}
	if tg.protocol != "TCP" {
		return nil, fmt.Errorf("albemu: target group %s is %s; an NLB listener needs TCP", tg.name, tg.protocol)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("albemu: listen: %w", err)
	}
	l := &NLBListener{e: e, tg: tg, ln: ln, flows: map[net.Conn]struct{}{}}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		_ = ln.Close()
		return nil, errors.New("albemu: emulator closed")
	}
	e.listeners[l] = struct{}{}
	e.goLocked(l.serve)
	return l, nil
}

// Addr is the listener's "host:port".
func (l *NLBListener) Addr() string { return l.ln.Addr().String() }

// Close stops the listener and closes its flows.
func (l *NLBListener) Close() error {
	l.closeOnce.Do(func() {
		l.closeErr = l.ln.Close()
		l.mu.Lock()
		for c := range l.flows {
			_ = c.Close()
		}
		l.mu.Unlock()
		l.e.mu.Lock()
		delete(l.e.listeners, l)
		l.e.mu.Unlock()
	})
	return l.closeErr
}

func (l *NLBListener) serve() {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		l.mu.Lock()
		l.flows[c] = struct{}{}
		l.mu.Unlock()
		wg.Go(func() {
			l.forward(c)
			l.mu.Lock()
			delete(l.flows, c)
			l.mu.Unlock()
		})
	}
}

// forward carries one flow: its node picks a target, and the bytes go both
// ways until either side closes or draining cuts the flow.
func (l *NLBListener) forward(client net.Conn) {
	defer client.Close()
	e := l.e
	n := int((l.spread.Add(1) - 1) % uint64(len(e.nodes)))
	e.clientConnected(l.tg, n)
	rec := RequestRecord{Time: time.Now(), Listener: l.Addr(), Node: n, TargetGroupArn: l.tg.arn, Method: "TCP"}
	defer func() {
		rec.Duration = time.Since(rec.Time)
		e.recordRequest(rec)
	}()

	e.mu.Lock()
	rt := l.tg.pickLocked(n)
	ctx, cancel := context.WithCancelCause(e.ctx)
	x := &exchange{ctx: ctx, cancel: cancel}
	if rt != nil {
		rt.inflight[x] = struct{}{}
	}
	e.mu.Unlock()
	defer cancel(nil)
	if rt == nil {
		rec.Status, rec.Err = http.StatusServiceUnavailable, "no target in the routing set: flow reset"
		return
	}
	defer func() {
		e.mu.Lock()
		delete(rt.inflight, x)
		e.mu.Unlock()
	}()
	rec.Target = rt.target.String()
	target, err := e.dialLoopback(ctx, n, "tcp", rt.target.String())
	if err != nil {
		rec.Status, rec.Err = http.StatusBadGateway, "connect failed: "+err.Error()
		return
	}
	defer target.Close()
	rec.Status = http.StatusOK
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // pass the half-close on
		}
		done <- struct{}{}
	}
	go pipe(target, client)
	go pipe(client, target)
	for open := 2; open > 0; {
		select {
		case <-done:
			open--
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errDrainCut) {
				rec.Err = errDrainCut.Error()
			}
			// Closing both ends unblocks the copies still running; one
			// may have ended already.
			_ = client.Close()
			_ = target.Close()
			for ; open > 0; open-- {
				<-done
			}
			return
		}
	}
}
