package albemu_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/albemu"
)

func TestNoTargetsIs503(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	// The lag keeps the registration below from reaching the data plane.
	d := newDataPlane(t, albemu.Options{PropagationLag: time.Hour}, albemu.TargetGroupSpec{})

	status, body := mustGet(t, ctx, d.ln.URL())
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "503 Service Temporarily Unavailable") {
		t.Fatalf("empty target group: got %d %q, want the ALB's 503 page", status, body)
	}

	a := startTarget(t, "127.0.0.2")
	if err := d.emu.RegisterTargets(d.arn, a.Target); err != nil {
		t.Fatal(err)
	}
	if got := d.health(t, a); got.State != albemu.StateInitial || got.Reason != albemu.ReasonRegistrationInProgress {
		t.Fatalf("before propagation: got %s/%s, want initial/Elb.RegistrationInProgress", got.State, got.Reason)
	}
	if status, _ := mustGet(t, ctx, d.ln.URL()); status != http.StatusServiceUnavailable {
		t.Fatalf("registration still propagating: got %d, want 503", status)
	}
	if a.hits.Load() != 0 {
		t.Fatalf("target got %d requests before its registration propagated", a.hits.Load())
	}
}

func TestRoundRobinOverHealthyTargets(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{})
	a, b := startTarget(t, "127.0.0.3"), startTarget(t, "127.0.0.4")
	d.registerHealthy(t, ctx, a, b)

	if counts := statusCounts(t, ctx, d.ln.URL(), 6); counts[http.StatusOK] != 6 {
		t.Fatalf("statuses %v, want 6×200", counts)
	}
	if a.hits.Load() != 3 || b.hits.Load() != 3 {
		t.Fatalf("hits a=%d b=%d, want 3 each", a.hits.Load(), b.hits.Load())
	}
	for _, r := range d.emu.Requests() {
		if r.Status != http.StatusOK || r.Target == "" || r.TargetGroupArn != d.arn {
			t.Fatalf("request record %+v, want a 200 with its target", r)
		}
	}
}

func TestUnhealthyTargetsGetNoTrafficUnlessAllAre(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{})
	a, b := startTarget(t, "127.0.0.5"), startTarget(t, "127.0.0.6")
	d.registerHealthy(t, ctx, a, b)

	b.healthCode.Store(http.StatusInternalServerError)
	d.waitState(t, ctx, b, albemu.StateUnhealthy)
	statusCounts(t, ctx, d.ln.URL(), 4)
	if a.hits.Load() != 4 || b.hits.Load() != 0 {
		t.Fatalf("one unhealthy: hits a=%d b=%d, want all on the healthy one", a.hits.Load(), b.hits.Load())
	}

	// With every target unhealthy the ALB fails open and uses them all.
	a.healthCode.Store(http.StatusInternalServerError)
	d.waitState(t, ctx, a, albemu.StateUnhealthy)
	if counts := statusCounts(t, ctx, d.ln.URL(), 4); counts[http.StatusOK] != 4 {
		t.Fatalf("fail-open statuses %v, want 4×200", counts)
	}
	if b.hits.Load() == 0 {
		t.Fatalf("fail-open: unhealthy target b got no traffic")
	}
}

func TestTargetKilledWhileRegisteredGets502(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{})
	a := startTarget(t, "127.0.0.7")
	d.registerHealthy(t, ctx, a)

	a.kill()
	status, _ := mustGet(t, ctx, d.ln.URL())
	if status != http.StatusBadGateway {
		t.Fatalf("got %d, want 502 from a dead target", status)
	}
	reqs := d.emu.Requests()
	if last := reqs[len(reqs)-1]; last.Target != a.String() || !strings.Contains(last.Err, "connect failed") {
		t.Fatalf("request record %+v, want a failed connect to %s", last, a)
	}
}

// The real-world failure: the pod exits as soon as it is deregistered, while
// the data plane still sends it new requests.
func TestKillDuringPropagationLagGets502(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{DeregistrationDelay: time.Hour})
	a, b := startTarget(t, "127.0.0.8"), startTarget(t, "127.0.0.9")
	d.registerHealthy(t, ctx, a, b)

	d.emu.SetPropagationLag(time.Hour)
	if err := d.emu.DeregisterTargets(d.arn, a.Target); err != nil {
		t.Fatal(err)
	}
	if got := d.health(t, a); got.State != albemu.StateDraining {
		t.Fatalf("deregistered target is %s, want draining", got.State)
	}
	if counts := statusCounts(t, ctx, d.ln.URL(), 4); counts[http.StatusOK] != 4 || a.hits.Load() == 0 {
		t.Fatalf("statuses %v, draining target hits %d: want new requests still reaching it", counts, a.hits.Load())
	}

	a.kill()
	if counts := statusCounts(t, ctx, d.ln.URL(), 4); counts[http.StatusBadGateway] == 0 {
		t.Fatalf("statuses %v, want 502s from the killed, still routed target", counts)
	}
}

func TestKillAfterPropagationLagIsClean(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := newDataPlane(t, albemu.Options{PropagationLag: 200 * time.Millisecond},
		albemu.TargetGroupSpec{DeregistrationDelay: time.Hour})
	a, b := startTarget(t, "127.0.0.10"), startTarget(t, "127.0.0.11")
	d.registerHealthy(t, ctx, a, b)

	if err := d.emu.DeregisterTargets(d.arn, a.Target); err != nil {
		t.Fatal(err)
	}
	d.waitNotRouted(t, ctx, a)
	a.kill()

	if counts := statusCounts(t, ctx, d.ln.URL(), 10); counts[http.StatusOK] != 10 {
		t.Fatalf("statuses %v, want 10×200 once the deregistration propagated", counts)
	}
	if got := d.health(t, a); got.State != albemu.StateDraining {
		t.Fatalf("target is %s, want still draining for the delay", got.State)
	}
}

func TestDrainingKeepsInFlightRequestsUntilDelayEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		ip         string
		delay      time.Duration
		release    bool // let the target answer while draining
		wantStatus int
	}{
		{name: "finishes within the delay", ip: "127.0.0.12", delay: time.Hour, release: true, wantStatus: http.StatusOK},
		{name: "cut when the delay ends", ip: "127.0.0.13", delay: 300 * time.Millisecond, wantStatus: http.StatusBadGateway},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{DeregistrationDelay: tc.delay})
			a := startTarget(t, tc.ip)
			d.registerHealthy(t, ctx, a)

			result := make(chan int, 1)
			go func() {
				status, _, _ := get(ctx, d.ln.URL()+"/block")
				result <- status
			}()
			a.waitArrived(t, ctx)
			if err := d.emu.DeregisterTargets(d.arn, a.Target); err != nil {
				t.Fatal(err)
			}
			if tc.release {
				d.waitNotRouted(t, ctx, a)
				close(a.release)
			}
			if got := <-result; got != tc.wantStatus {
				t.Fatalf("in-flight request got %d, want %d", got, tc.wantStatus)
			}
		})
	}
}

func TestDrainingThenUnused(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{Port: 8080, DeregistrationDelay: 500 * time.Millisecond})
	a := startTarget(t, "127.0.0.14")
	d.registerHealthy(t, ctx, a)

	if err := d.emu.DeregisterTargets(d.arn, a.Target); err != nil {
		t.Fatal(err)
	}
	got := d.health(t, a)
	if got.State != albemu.StateDraining || got.Reason != albemu.ReasonDeregistrationInProgress {
		t.Fatalf("after deregistration: %+v, want draining/Target.DeregistrationInProgress", got)
	}
	d.waitState(t, ctx, a, albemu.StateUnused)
	if got := d.health(t, a); got.Reason != albemu.ReasonNotRegistered {
		t.Fatalf("after the delay: %+v, want unused/Target.NotRegistered", got)
	}
	all, err := d.emu.TargetHealth(d.arn)
	if err != nil || len(all) != 0 {
		t.Fatalf("unfiltered health after the delay: %v, %v; want no targets", all, err)
	}
	never, err := d.emu.TargetHealth(d.arn, albemu.Target{ID: "127.0.0.99"})
	if err != nil || never[0].State != albemu.StateUnused || never[0].Target.Port != 8080 {
		t.Fatalf("never registered: %+v, %v; want unused on the group's port 8080", never, err)
	}
}

// targetFailure is a way a target can let a request down.
type targetFailure struct {
	name       string
	handler    http.HandlerFunc
	wantStatus int
	wantErr    string
}

func TestTargetFailuresMapToALBStatuses(t *testing.T) {
	t.Parallel()
	failures := []targetFailure{
		{
			name: "closes before answering",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, _, _ := http.NewResponseController(w).Hijack()
				_ = conn.Close()
			},
			wantStatus: http.StatusBadGateway,
			wantErr:    "target closed or reset",
		},
		{
			name: "resets the connection",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, _, _ := http.NewResponseController(w).Hijack()
				_ = conn.(*net.TCPConn).SetLinger(0)
				_ = conn.Close()
			},
			wantStatus: http.StatusBadGateway,
			wantErr:    "target closed or reset",
		},
		{
			name: "sends half a status line",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, buf, _ := http.NewResponseController(w).Hijack()
				_, _ = buf.WriteString("HTTP/1.1 200")
				_ = buf.Flush()
				_ = conn.Close()
			},
			wantStatus: http.StatusBadGateway,
			wantErr:    "target closed or reset",
		},
		{
			name: "stays silent past the idle timeout",
			handler: func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			wantStatus: http.StatusGatewayTimeout,
			wantErr:    "idle timeout",
		},
	}
	ctx := testContext(t)
	emu := albemu.NewForTest(t, albemu.Options{IdleTimeout: 300 * time.Millisecond})
	for i, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: fmt.Sprintf("fail%d", i), HealthCheck: fastHealth})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := emu.AddListener(arn, "")
			if err != nil {
				t.Fatal(err)
			}
			a := startFailingTarget(t, fmt.Sprintf("127.0.1.%d", i+1), tc.handler)
			if err := emu.RegisterTargets(arn, a); err != nil {
				t.Fatal(err)
			}
			if err := emu.WaitTargetState(ctx, arn, a, albemu.StateHealthy); err != nil {
				t.Fatal(err)
			}
			status, _ := mustGet(t, ctx, ln.URL()+"/fail")
			if status != tc.wantStatus {
				t.Fatalf("got %d, want %d", status, tc.wantStatus)
			}
			var rec albemu.RequestRecord
			for _, r := range emu.Requests() {
				if r.TargetGroupArn == arn {
					rec = r
				}
			}
			if rec.Status != tc.wantStatus || !strings.Contains(rec.Err, tc.wantErr) {
				t.Fatalf("request record %+v, want status %d and error about %q", rec, tc.wantStatus, tc.wantErr)
			}
		})
	}
}

// startFailingTarget serves healthy health checks and fails on /fail.
func startFailingTarget(t *testing.T, ip string, fail http.HandlerFunc) albemu.Target {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/fail", fail)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	tt, err := albemu.ParseTarget(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func TestBodyCutMidwayIsRecorded(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{})
	a := startFailingTarget(t, "127.0.1.20", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, _ := http.NewResponseController(w).Hijack()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
		_ = buf.Flush()
		_ = conn.Close()
	})
	if err := d.emu.RegisterTargets(d.arn, a); err != nil {
		t.Fatal(err)
	}
	if err := d.emu.WaitTargetState(ctx, d.arn, a, albemu.StateHealthy); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(ctx, d.ln.URL()+"/fail"); err == nil {
		t.Fatal("client read a full response from a target that closed mid-body")
	}
	if err := d.emu.Wait(ctx, func() bool { return len(d.emu.Requests()) > 0 }); err != nil {
		t.Fatal(err)
	}
	if rec := d.emu.Requests()[0]; !strings.Contains(rec.Err, "response cut mid-body") {
		t.Fatalf("request record %+v, want the cut noted", rec)
	}
}

func TestNonLoopbackTargetsAreNeverContacted(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	strict := albemu.NewForTest(t, albemu.Options{})
	arn, err := strict.CreateTargetGroup(albemu.TargetGroupSpec{Name: "strict"})
	if err != nil {
		t.Fatal(err)
	}
	var apiErr *albemu.APIError
	if err := strict.RegisterTargets(arn, albemu.Target{ID: "10.0.0.1"}); !errors.As(err, &apiErr) || apiErr.Code != albemu.CodeInvalidTarget {
		t.Fatalf("registering 10.0.0.1: %v, want InvalidTarget", err)
	}

	d := newDataPlane(t, albemu.Options{AllowNonLoopbackTargets: true}, albemu.TargetGroupSpec{})
	pod := albemu.Target{ID: "10.0.0.1", Port: 8080}
	if err := d.emu.RegisterTargets(d.arn, pod); err != nil {
		t.Fatal(err)
	}
	if err := d.emu.WaitTargetState(ctx, d.arn, pod, albemu.StateHealthy); err != nil {
		t.Fatal(err)
	}
	status, _ := mustGet(t, ctx, d.ln.URL())
	if rec := d.emu.Requests()[0]; status != http.StatusBadGateway || !strings.Contains(rec.Err, "non-loopback") {
		t.Fatalf("got %d %+v, want 502 refused by the loopback guard", status, rec)
	}
}
