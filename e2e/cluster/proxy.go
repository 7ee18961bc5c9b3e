package cluster

import (
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// Proxy forwards TCP connections to backends, standing in for a Kubernetes
// Service (kube-proxy) in front of albdrain's replicas, or for the network
// path between a component and the apiserver, so tests can kill a backend
// or cut the path and restore it.
//
// As kube-proxy does, it keeps the client's source IP: it dials the backend
// from the client's own address, which works for any 127/8 address on the
// loopback interface. The hold endpoint relies on that to tell pods apart.
type Proxy struct {
	ln net.Listener

	mu       sync.Mutex
	backends []string
	next     int
	down     bool
	// refused counts connections turned away: while cut, or with no live backend.
	refused int
	// conns maps each client connection to its backend connection and backend.
	conns map[net.Conn]proxied
	wg    sync.WaitGroup
	// dialOnce makes a connection to a backend that refuses it fail, as
	// kube-proxy's would, rather than move on to the next backend.
	dialOnce bool
}

type proxied struct {
	backend string
	conn    net.Conn
}

// dialTimeout bounds reaching a backend; every backend is on loopback, so
// only a stopped one fails, and it fails at once.
const dialTimeout = 2 * time.Second

// NewProxy listens on addr ("127.0.0.1:0" for any port) and forwards each
// connection to the backends in turn.
func NewProxy(addr string, backends ...string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, backends: slices.Clone(backends), conns: map[net.Conn]proxied{}}
	p.wg.Go(p.accept)
	return p, nil
}

// NewServiceProxy listens on addr and forwards each connection to one of
// the backends SetBackends gave it, in turn, as kube-proxy does: a backend
// that refuses the connection fails it.
func NewServiceProxy(addr string) (*Proxy, error) {
	p, err := NewProxy(addr)
	if p != nil {
		p.dialOnce = true
	}
	return p, err
}

// SetBackends replaces the backends new connections go to; established
// connections stay where they are, as kube-proxy leaves them.
func (p *Proxy) SetBackends(backends []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backends = slices.Clone(backends)
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection and turns new ones away until Restore, as a
// network partition would, but without timeouts: the other end sees the
// connection closed or refused at once.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	p.closeWhere(func(proxied) bool { return true })
}

// Restore forwards connections again after Cut.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Kill takes a backend out of rotation and drops its connections without
// an answer, as when its pod or node dies: what it was serving is lost
// mid-request.
func (p *Proxy) Kill(backend string) {
	p.mu.Lock()
	p.backends = slices.DeleteFunc(p.backends, func(b string) bool { return b == backend })
	p.mu.Unlock()
	p.closeWhere(func(c proxied) bool { return c.backend == backend })
}

// Active counts the open connections to backend.
func (p *Proxy) Active(backend string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.conns {
		if c.backend == backend {
			n++
		}
	}
	return n
}

// Refused counts the connections turned away so far.
func (p *Proxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// Close stops listening, drops every connection and waits for the
// forwarding goroutines.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.closeWhere(func(proxied) bool { return true })
	p.wg.Wait()
	return err
}

func (p *Proxy) closeWhere(match func(proxied) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for client, c := range p.conns {
		if match(c) {
			client.Close()
			c.conn.Close()
		}
	}
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Go(func() { p.forward(client) })
	}
}

// forward connects client to the first backend, in round-robin order, that
// accepts: like a Service whose endpoints have caught up with a dead
// replica, a stopped backend is skipped rather than failing the client.
func (p *Proxy) forward(client net.Conn) {
	p.mu.Lock()
	down, order := p.down, slices.Clone(p.backends)
	if len(order) > 0 {
		p.next = (p.next + 1) % len(order)
		order = append(order[p.next:], order[:p.next]...)
		if p.dialOnce {
			order = order[:1]
		}
	}
	p.mu.Unlock()
	var backend net.Conn
	var addr string
	if !down {
		dialer := &net.Dialer{Timeout: dialTimeout}
		if ta, ok := client.RemoteAddr().(*net.TCPAddr); ok {
			dialer.LocalAddr = &net.TCPAddr{IP: ta.IP}
		}
		for _, addr = range order {
			var err error
			if backend, err = dialer.Dial("tcp", addr); err == nil {
				break
			}
		}
	}
	p.mu.Lock()
	if backend == nil || p.down {
		p.refused++
		p.mu.Unlock()
		client.Close()
		if backend != nil {
			backend.Close()
		}
		return
	}
	p.conns[client] = proxied{backend: addr, conn: backend}
	p.mu.Unlock()

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(backend, client)
	go pipe(client, backend)
	// Either side ending ends both: the protocols carried (HTTP/1.1 without
	// keep-alive to the hold endpoint, TLS, the apiserver's HTTP/2) never
	// half-close.
	<-done
	client.Close()
	backend.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	p.mu.Unlock()
}
