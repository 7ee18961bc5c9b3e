package albemu

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// errNotLoopback refuses any connection off this machine: the emulator must
// never send traffic anywhere but loopback (and the test's own subnet),
// whatever was registered.
var errNotLoopback = errors.New("albemu: refusing to connect to a non-loopback address")

// contactable reports whether the emulator may send traffic to ip: loopback,
// or the test's own subnet when Options.TargetSubnet names one.
func (e *Emulator) contactable(ip netip.Addr) bool {
	return ip.IsLoopback() || (e.opts.TargetSubnet.IsValid() && e.opts.TargetSubnet.Contains(ip))
}

// dialLoopback dials only contactable addresses, within the connect timeout.
// Node n connects to a loopback target from its own address.
func (e *Emulator) dialLoopback(ctx context.Context, n int, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !e.contactable(ap.Addr()) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errNotLoopback}
	}
	d := net.Dialer{Timeout: e.opts.ConnectTimeout}
	if src, ok := nodeSource(n); ok && ap.Addr().IsLoopback() && ap.Addr().Is4() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return d.DialContext(ctx, network, addr)
}

// nodeSource is the loopback address node n connects to targets from. An
// ALB's nodes each have an address in their zone's subnet, so a target can
// tell them apart; the block is one the kubelet stand-in never gives pods.
func nodeSource(n int) (netip.Addr, bool) {
	if n > 253 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{127, 250, 0, byte(n + 1)}), true
}

// newTargetTransport is node n's connection pool to targets. Like the
// ALB's it keeps connections alive, and it gives up on a connection that
// carries no data for the idle timeout.
func (e *Emulator) newTargetTransport(n int) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := e.dialLoopback(ctx, n, network, addr)
			if err != nil {
				return nil, err
			}
			return &idleConn{Conn: c, idle: e.opts.IdleTimeout}, nil
		},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     e.opts.IdleTimeout,
	}
}

// newProbeClient is node n's health checker: a fresh connection per check,
// so a check says something about the target's listener right now.
func (e *Emulator) newProbeClient(n int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return e.dialLoopback(ctx, n, network, addr)
			},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is a result, as for the ALB
		},
	}
}

// idleConn fails a read once the connection has been silent for idle, which
// is how the ALB's idle timeout surfaces (as 504) while waiting on a target.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Write counts as activity too: the transport's reader may have been
// parked on this connection since it went idle, and a new request on it
// must get a full idle period to be answered.
func (c *idleConn) Write(p []byte) (int, error) {
	deadline := time.Now().Add(c.idle)
	if err := c.Conn.SetDeadline(deadline); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
