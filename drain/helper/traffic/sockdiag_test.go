package traffic

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// These tests run real HTTP servers and clients on loopback addresses of
// their own and read the sockets through sock_diag, as the helper does.

// pod serves HTTP on ip, as a pod would.
func pod(t *testing.T, ip string) (port uint16) {
	return gatedPod(t, ip, nil, nil)
}

// gatedPod is a pod whose /gated requests say on entered that they
// arrived and wait for proceed before answering.
func gatedPod(t *testing.T, ip string, entered, proceed chan struct{}) (port uint16) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/gated" {
			entered <- struct{}{}
			<-proceed
		}
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// client sends requests from the address from; keepAlive false closes
// each connection after its request, like a health check.
func client(t *testing.T, from string, keepAlive bool) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: !keepAlive}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, ip string, port uint16, path string) {
	t.Helper()
	resp, err := c.Get("http://" + net.JoinHostPort(ip, strconv.Itoa(int(port))) + path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func post(t *testing.T, c *http.Client, ip string, port uint16, size int) {
	t.Helper()
	resp, err := c.Post("http://"+net.JoinHostPort(ip, strconv.Itoa(int(port)))+"/", "text/plain", strings.NewReader(strings.Repeat("x", size)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func sample(t *testing.T, tr *Tracker) time.Time {
	t.Helper()
	// As the helper samples: the kernel keeps the served ports' sockets.
	socks, err := SockDiag{Ports: tr.filter.Ports, Addr: tr.filter.PodIP}.Sockets()
	if err != nil {
		t.Skipf("sock_diag unavailable here: %v", err)
	}
	now := time.Now()
	tr.Observe(now, socks)
	return now
}

// kernelSlack covers the kernel's millisecond (jiffy) resolution of
// last-data ages when comparing them with the test's clock.
const kernelSlack = 20 * time.Millisecond

func TestRequestsOnAKeptAliveConnectionAreTraffic(t *testing.T) {
	const ip, lb = "127.0.21.1", "127.0.21.2"
	port := pod(t, ip)
	alb := client(t, lb, true)
	get(t, alb, ip, port, "/") // opens the kept-alive connection before the hold
	tr := NewTracker(Filter{PodIP: netip.MustParseAddr(ip), Ports: []uint16{port}})
	sample(t, tr)
	for i := range 3 {
		sent := time.Now()
		get(t, alb, ip, port, "/") // same connection: no new flow
		sample(t, tr)
		if last := tr.LastTraffic(Hints{}, time.Now()); last.Before(sent.Add(-kernelSlack)) {
			t.Fatalf("request %d sent at %v on a kept-alive connection: last traffic %v, before it", i, sent, last)
		}
	}
	if n := len(tr.conns); n != 1 {
		t.Errorf("tracked %d connections, want the one kept alive", n)
	}
	if gaps := evidenceOf(tr, Hints{}, time.Now())[lb].Gaps; gaps != 4 {
		t.Errorf("%d gaps seen from the load balancer, want 4: its latest request before the watch, then 3", gaps)
	}

	// Large bodies are traffic too, without counting twice per sample.
	sent := time.Now()
	post(t, alb, ip, port, 1<<20)
	sample(t, tr)
	if last := tr.LastTraffic(Hints{}, time.Now()); last.Before(sent.Add(-kernelSlack)) {
		t.Errorf("a 1 MiB request left last traffic at %v, before it was sent at %v", last, sent)
	}
}

func TestAnIdleKeptAliveConnectionIsQuiet(t *testing.T) {
	const ip, lb = "127.0.22.1", "127.0.22.2"
	port := pod(t, ip)
	get(t, client(t, lb, true), ip, port, "/")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := Start(ctx, SockDiag{}, Filter{PodIP: netip.MustParseAddr(ip), Ports: []uint16{port}}, 5*time.Millisecond, Period{Min: 50 * time.Millisecond})
	if w.Signal() != contract.SignalSockDiag {
		t.Skip("sock_diag unavailable here")
	}
	if quiet, _ := w.WaitQuiet(ctx, Hints{}); !quiet {
		t.Fatal("an idle kept-alive connection never became quiet")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.t.conns) != 1 {
		t.Fatalf("tracked %d connections, want the idle one", len(w.t.conns))
	}
	for _, c := range w.t.conns {
		if !c.open || c.arrivals != 0 {
			t.Errorf("idle connection: open %v, %d arrivals; want open and none", c.open, c.arrivals)
		}
	}
	if last := w.t.LastTraffic(Hints{}, time.Now()); !last.Equal(w.t.start) {
		t.Errorf("last traffic %v, want the first sample %v: nothing was sent", last, w.t.start)
	}
}

func TestNodeLoopbackAndOwnTrafficIsIgnored(t *testing.T) {
	const ip, node, lb = "127.0.23.1", "127.0.23.2", "127.0.23.3"
	port := pod(t, ip)
	other := pod(t, lb) // a service the pod calls
	tr := NewTracker(Filter{PodIP: netip.MustParseAddr(ip), NodeIP: netip.MustParseAddr(node), Ports: []uint16{port, other}})
	first := sample(t, tr)
	get(t, client(t, node, true), ip, port, "/healthz") // the kubelet's probe
	get(t, client(t, ip, true), ip, port, "/")          // the pod to itself
	get(t, client(t, ip, true), lb, other, "/")         // the pod's own outbound call
	sample(t, tr)
	if n := len(tr.conns); n != 0 {
		t.Errorf("tracked %d connections from the node, the pod itself and outbound, want none", n)
	}
	if last := tr.LastTraffic(Hints{}, time.Now()); !last.Equal(first) {
		t.Errorf("last traffic %v, want the first sample %v", last, first)
	}

	// Without a pod IP only the pod's loopback peers tell sidecars apart.
	all := NewTracker(Filter{Ports: []uint16{port}})
	sample(t, all)
	get(t, client(t, "127.0.0.1", true), ip, port, "/")
	get(t, client(t, lb, true), ip, port, "/")
	sample(t, all)
	if n := len(all.conns); n != 0 {
		t.Errorf("tracked %d loopback connections without a pod IP, want none", n)
	}
}

func TestNLBCountsNewFlowsOnly(t *testing.T) {
	const ip, lb = "127.0.24.1", "127.0.24.2"
	port := pod(t, ip)
	nlb := client(t, lb, true)
	get(t, nlb, ip, port, "/") // an established flow
	hints := Hints{Flows: []uint16{port}}
	tr := NewTracker(Filter{PodIP: netip.MustParseAddr(ip), Ports: []uint16{port}})
	first := sample(t, tr)
	get(t, nlb, ip, port, "/") // data on the established flow
	sample(t, tr)
	if last := tr.LastTraffic(hints, time.Now()); !last.Equal(first) {
		t.Errorf("data on an established flow moved last traffic to %v", last)
	}
	opened := time.Now()
	get(t, client(t, lb, true), ip, port, "/") // a new flow
	sample(t, tr)
	if last := tr.LastTraffic(hints, time.Now()); last.Before(opened.Add(-kernelSlack)) {
		t.Errorf("a new flow at %v left last traffic at %v", opened, last)
	}
	// One arrival for the NLB (the new flow); two for an ALB (the data too).
	now := time.Now()
	if got := evidenceOf(tr, hints, now); len(got) != 1 || got[flowsKey].Gaps != 1 {
		t.Errorf("NLB: evidence %v, want one gap for one new flow, from all flows at once", got)
	}
	if got := evidenceOf(tr, Hints{}, now)[lb]; got.Gaps != 3 {
		t.Errorf("ALB: evidence %+v, want 3 gaps: the first request's data before the watch, the data after, the new connection", got)
	}
}

func TestHealthChecksAreNotTraffic(t *testing.T) {
	const ip, lb = "127.0.25.1", "127.0.25.2"
	entered, proceed := make(chan struct{}), make(chan struct{})
	port := gatedPod(t, ip, entered, proceed)
	hints := Hints{HealthChecks: []HealthCheck{{Port: port, MaxBytes: 1024 + 8, Interval: time.Hour}}}
	tr := NewTracker(Filter{PodIP: netip.MustParseAddr(ip), Ports: []uint16{port}})
	first := sample(t, tr)
	checker := client(t, lb, false)
	for range 3 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := checker.Get("http://" + net.JoinHostPort(ip, strconv.Itoa(int(port))) + "/gated")
			if err == nil {
				resp.Body.Close()
			}
		}()
		// Sampled while the check is being answered: a new connection
		// that may yet turn out to be a request.
		<-entered
		sample(t, tr)
		if n := pending(tr, hints); n != 1 {
			t.Errorf("%d pending connections during a check, want 1", n)
		}
		proceed <- struct{}{}
		<-done
	}
	// The check's connection closes after the answer; until it has, it is
	// pending.
	for open := true; open; {
		sample(t, tr)
		open = false
		for _, c := range tr.conns {
			open = open || c.open
		}
	}
	if last := tr.LastTraffic(hints, time.Now()); !last.Equal(first) {
		t.Errorf("health checks moved last traffic to %v", last)
	}
	if got := evidenceOf(tr, Hints{}, time.Now())[lb].Gaps; got != 3 {
		for k, c := range tr.conns {
			t.Logf("%v %+v", k, c)
		}
		t.Errorf("without health-check hints %d gaps, want the 3 checks'", got)
	}
	if got := evidenceOf(tr, hints, time.Now()); len(got) != 0 {
		t.Errorf("with health-check hints the checker is a source: %v", got)
	}

	// A new connection the load balancer keeps alive is traffic once it
	// carries more than a health check could.
	alb := client(t, lb, true)
	sent := time.Now()
	post(t, alb, ip, port, 4096)
	sample(t, tr)
	if last := tr.LastTraffic(hints, time.Now()); last.Before(sent.Add(-kernelSlack)) {
		t.Errorf("a request on a new kept-alive connection at %v left last traffic at %v", sent, last)
	}
}

func pending(tr *Tracker, h Hints) int {
	n := 0
	for k, c := range tr.conns {
		if h.classify(k, c, time.Now()) == kindPending {
			n++
		}
	}
	return n
}

// A health check caught open by the first sample, from a node that sends
// no requests, is neither a source nor a gap once it closes: counted, it
// was that node's latest request, and its node a source whose silence had
// to last the longest quiet period.
func TestAHealthCheckOpenAtTheFirstSampleIsNoEvidence(t *testing.T) {
	const ip, lb, checkerIP = "127.0.26.1", "127.0.26.2", "127.0.26.3"
	entered, proceed := make(chan struct{}), make(chan struct{})
	port := gatedPod(t, ip, entered, proceed)
	hints := Hints{HealthChecks: []HealthCheck{{Port: port, MaxBytes: 1024 + 6, Interval: time.Hour}}}
	alb := client(t, lb, true)
	get(t, alb, ip, port, "/")
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := client(t, checkerIP, false).Get("http://" + net.JoinHostPort(ip, strconv.Itoa(int(port))) + "/gated")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	tr := NewTracker(Filter{PodIP: netip.MustParseAddr(ip), Ports: []uint16{port}})
	sample(t, tr) // the check is open, its request received
	proceed <- struct{}{}
	<-done
	get(t, alb, ip, port, "/")
	for open := true; open; {
		sample(t, tr)
		open = false
		for k, c := range tr.conns {
			open = open || (c.open && k.remote.Addr().String() == checkerIP)
		}
	}
	got := evidenceOf(tr, hints, time.Now())
	if _, ok := got[checkerIP]; ok || got[lb].Gaps != 2 {
		t.Errorf("evidence %v: want only the load balancer's 2 gaps (its request before the watch, one after), none from the checker", got)
	}
}

// TestSockDiagKeepsTheServedSockets: asked for a pod's address and ports,
// sock_diag lists the sockets on those exactly as the whole table shows
// them, tcp_info included, and no other (not another pod's on the same
// port): the kernel filters, so a sample costs the pod's served sockets
// however many others the namespace holds.
func TestSockDiagKeepsTheServedSockets(t *testing.T) {
	const ip, other, lb = "127.0.27.1", "127.0.27.3", "127.0.27.2"
	var ports []uint16
	c := client(t, lb, true)
	for range 4 {
		p := pod(t, ip)
		ports = append(ports, p)
		get(t, c, ip, p, "/") // a kept-alive connection with data
	}
	post(t, c, ip, ports[1], 64<<10)
	// A dual-stack listener: its IPv4 connections are IPv6 sockets, on
	// the IPv4-mapped form of the pod's address.
	dual := serve(t, ":0")
	get(t, c, ip, dual, "/")
	// Another pod serving one of the ports on its own address.
	serve(t, net.JoinHostPort(other, strconv.Itoa(int(ports[1]))))
	get(t, c, other, ports[1], "/")

	// The first, middle and last of the ports asked, and one not.
	kept := []uint16{ports[0], ports[1], dual, ports[3]}
	for _, addr := range []netip.Addr{netip.MustParseAddr(ip), {}} {
		before := time.Now()
		all, err := SockDiag{}.Sockets()
		if err != nil {
			t.Skipf("sock_diag unavailable here: %v", err)
		}
		got, err := SockDiag{Ports: kept, Addr: addr}.Sockets()
		if err != nil {
			t.Fatalf("dump filtered by %v %v: %v", addr, kept, err)
		}
		compareFiltered(t, all, got, time.Since(before), func(s Socket) bool {
			return slices.Contains(kept, s.Local.Port()) && (!addr.IsValid() || s.Local.Addr() == addr)
		})
		wantOther := !addr.IsValid()
		if hasOther := slices.ContainsFunc(got, func(s Socket) bool { return s.Local.Addr().String() == other }); hasOther != wantOther {
			t.Errorf("dump filtered by %v %v: the other pod's sockets listed: %v, want %v", addr, kept, hasOther, wantOther)
		}
	}
}

// serve answers HTTP on addr and returns its port.
func serve(t *testing.T, addr string) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// compareFiltered checks that got lists the sockets of all that keep
// accepts, as all shows them; apart is at least the time between the two
// dumps.
func compareFiltered(t *testing.T, all, got []Socket, apart time.Duration, keep func(Socket) bool) {
	t.Helper()
	type id struct {
		local, remote netip.AddrPort
		state         uint8
	}
	want := map[id]Socket{}
	for _, s := range all {
		if keep(s) {
			want[id{s.Local, s.Remote, s.State}] = s
		}
	}
	if len(want) < 7 {
		t.Fatalf("the whole table shows %d sockets to keep, want a connection on each of 4 ports and 3 listeners", len(want))
	}
	seen := map[id]bool{}
	for _, s := range got {
		k := id{s.Local, s.Remote, s.State}
		seen[k] = true
		w, ok := want[k]
		if !ok {
			t.Errorf("filtered dump lists %v -> %v (state %d)", s.Local, s.Remote, s.State)
			continue
		}
		if (w.Info == nil) != (s.Info == nil) {
			t.Errorf("%v -> %v: tcp_info %+v, the whole table's %+v", s.Local, s.Remote, s.Info, w.Info)
			continue
		}
		if w.Info == nil {
			continue
		}
		// Idle connections: only the age of their last data moves, by
		// the time between the dumps.
		wi, si := *w.Info, *s.Info
		if d := si.LastDataRecv - wi.LastDataRecv; d < -kernelSlack || d > apart+kernelSlack {
			t.Errorf("%v -> %v: last data %v ago, the whole table's %v", s.Local, s.Remote, si.LastDataRecv, wi.LastDataRecv)
		}
		wi.LastDataRecv, si.LastDataRecv = 0, 0
		if wi != si {
			t.Errorf("%v -> %v: tcp_info %+v, the whole table's %+v", s.Local, s.Remote, si, wi)
		}
		if s.State == stateEstablished && si.BytesReceived == 0 {
			t.Errorf("%v -> %v: no bytes received, want its request", s.Local, s.Remote)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("filtered dump misses %v -> %v (state %d)", k.local, k.remote, k.state)
		}
	}
}
