package albemu_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/albdrain/albdrain/e2e/albemu"
)

// fastAndNever is a lag model whose every draw is either at once or never
// within a test, so which nodes have applied a change is known from the
// draws alone.
var fastAndNever = mustLag("samples:0s,1h")

func mustLag(s string) albemu.LagModel {
	m, err := albemu.ParseLag(s)
	if err != nil {
		panic(err)
	}
	return m
}

// seedWhere finds a seed whose first draws of m satisfy ok.
func seedWhere(t *testing.T, m albemu.LagModel, n int, ok func([]time.Duration) bool) (uint64, []time.Duration) {
	t.Helper()
	for seed := range uint64(1000) {
		if d := m.Draws(seed, n); ok(d) {
			return seed, d
		}
	}
	t.Fatal("no seed below 1000 gives the draws wanted")
	return 0, nil
}

// freshGet sends one GET on a new client connection, which the listener
// spreads to the next node.
func freshGet(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// Each node applies a deregistration after its own lag, drawn from the
// seeded model in call order; the emulator records when each node stopped
// routing, and until the slowest has, the target still gets new requests
// through the nodes that lag.
func TestNodesApplyDeregistrationAfterTheirOwnLags(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	// Two targets registered at once (6 draws), then one deregistered: one
	// node at once, at least one never.
	seed, draws := seedWhere(t, fastAndNever, 9, func(d []time.Duration) bool {
		dereg := d[6:9]
		return !slices.ContainsFunc(d[:6], func(x time.Duration) bool { return x > 0 }) &&
			slices.Contains(dereg, 0) && slices.Contains(dereg, time.Hour)
	})
	d := newDataPlane(t, albemu.Options{Lag: &fastAndNever, Seed: seed}, albemu.TargetGroupSpec{DeregistrationDelay: time.Hour})
	client := newClient(t, d.emu, 1, nil)
	a, b := startTarget(t, "127.0.1.1"), startTarget(t, "127.0.1.2")
	if _, err := client.RegisterTargets(ctx, &awselbv2.RegisterTargetsInput{TargetGroupArn: aws.String(d.arn), Targets: []types.TargetDescription{
		{Id: aws.String(a.ID), Port: aws.Int32(a.Port)}, {Id: aws.String(b.ID), Port: aws.Int32(b.Port)},
	}}); err != nil {
		t.Fatal(err)
	}
	d.waitState(t, ctx, a, albemu.StateHealthy)
	d.waitState(t, ctx, b, albemu.StateHealthy)
	if _, err := client.DeregisterTargets(ctx, &awselbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(d.arn), Targets: []types.TargetDescription{
		{Id: aws.String(a.ID), Port: aws.Int32(a.Port)},
	}}); err != nil {
		t.Fatal(err)
	}

	lags := draws[6:9]
	var stop albemu.Stop
	err := d.emu.Wait(ctx, func() bool {
		stop, _ = d.emu.TargetStop(d.arn, a.Target)
		for i, lag := range lags {
			if lag == 0 && stop.Nodes[i].IsZero() {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lags, stop.Lags); diff != "" {
		t.Errorf("lags recorded (-drawn from the seed +emulator):\n%s", diff)
	}
	if stop.Complete() || !stop.TrueStop().IsZero() {
		t.Errorf("stop %+v complete while nodes lag an hour", stop)
	}
	for i, lag := range lags {
		routed, err := d.emu.NodeRoutingTargets(d.arn, i)
		if err != nil {
			t.Fatal(err)
		}
		if stillRouted := slices.Contains(routed, a.Target); stillRouted != (lag > 0) || stop.Nodes[i].IsZero() != (lag > 0) {
			t.Errorf("node %d (lag %s): routes to a %v, stop recorded at %v", i, lag, stillRouted, stop.Nodes[i])
		}
		if stop.Nodes[i].Before(stop.Deregistered) && !stop.Nodes[i].IsZero() {
			t.Errorf("node %d stopped at %v, before the deregistration at %v", i, stop.Nodes[i], stop.Deregistered)
		}
	}

	// Two fresh connections per node: a node that lags sends one of its
	// two requests to a, a node that applied the change sends none.
	d.emu.ResetRequests()
	for range 2 * len(lags) {
		freshGet(t, ctx, d.ln.URL())
	}
	toA := make([]int, len(lags))
	for _, r := range d.emu.Requests() {
		if r.Target == a.String() {
			toA[r.Node]++
		}
	}
	for i, lag := range lags {
		want := 0
		if lag > 0 {
			want = 1
		}
		if toA[i] != want {
			t.Errorf("node %d (lag %s) sent %d requests to the deregistered target, want %d", i, lag, toA[i], want)
		}
	}
}

// connCounter is a target that counts the connections its requests came
// over.
type connCounter struct {
	mu    sync.Mutex
	conns map[string]int // remote address: requests
}

// Each node keeps its own keep-alive connections to a target: clients
// spread over three nodes reach the target over three connections, reused,
// each from its node's own address, as an ALB's nodes have one apiece.
func TestEachNodeHasItsOwnKeepAlivePool(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{})
	a := startTarget(t, "127.0.1.3")
	cc := &connCounter{conns: map[string]int{}}
	a.srv.Handler.(*http.ServeMux).HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		cc.mu.Lock()
		cc.conns[r.RemoteAddr]++
		cc.mu.Unlock()
	})
	d.registerHealthy(t, ctx, a)

	var clients []*http.Client
	for range 3 {
		clients = append(clients, &http.Client{Transport: &http.Transport{}})
	}
	for range 4 {
		for _, c := range clients {
			resp, err := c.Get(d.ln.URL() + "/count")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(cc.conns) != 3 {
		t.Errorf("requests came over %d connections %v, want 3: one kept alive per node", len(cc.conns), cc.conns)
	}
	hosts := map[string]bool{}
	for addr := range cc.conns {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		hosts[host] = true
	}
	if len(hosts) != 3 {
		t.Errorf("requests came from %d addresses %v, want one per node", len(hosts), hosts)
	}
	nodes := map[int]int{}
	for _, r := range d.emu.Requests() {
		nodes[r.Node]++
	}
	if diff := cmp.Diff(map[int]int{0: 4, 1: 4, 2: 4}, nodes); diff != "" {
		t.Errorf("requests per node (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"us-east-1a", "us-east-1b", "us-east-1c"}, d.emu.Zones()); diff != "" {
		t.Errorf("zones (-want +got):\n%s", diff)
	}
}

// Whether a draining target is still health-checked is a choice: AWS does
// not document it.
func TestHealthChecksWhileDraining(t *testing.T) {
	t.Parallel()
	for _, checked := range []bool{false, true} {
		t.Run(map[bool]string{false: "not checked", true: "checked"}[checked], func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			ip := map[bool]string{false: "127.0.1.4", true: "127.0.1.5"}[checked]
			d := newDataPlane(t, albemu.Options{HealthCheckDraining: checked}, albemu.TargetGroupSpec{DeregistrationDelay: 3 * time.Second})
			a := startTarget(t, ip)
			d.registerHealthy(t, ctx, a)
			if err := d.emu.DeregisterTargets(d.arn, a.Target); err != nil {
				t.Fatal(err)
			}
			atDeregistration := a.healthHits.Load()
			if checked {
				// Every check's verdict wakes Wait: a dozen more arrive
				// while the target drains.
				err := d.emu.Wait(ctx, func() bool { return a.healthHits.Load() >= atDeregistration+12 })
				if err != nil {
					t.Fatalf("health checks stopped at %d hits while draining: %v", a.healthHits.Load(), err)
				}
			}
			d.waitState(t, ctx, a, albemu.StateUnused)
			after := a.healthHits.Load()
			// Checks under way at the deregistration may still land: at
			// most one per node.
			if !checked && after > atDeregistration+3 {
				t.Errorf("%d health checks while draining, want none beyond those under way", after-atDeregistration)
			}
		})
	}
}
