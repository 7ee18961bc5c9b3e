package load

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunIsBoundedAndCountsFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%5 == 0 {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()

	run, err := Start(context.Background(), Options{
		URL: srv.URL, Workers: 3, Interval: time.Millisecond, MaxRequests: 50, MaxDuration: time.Minute, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, run)
	results := run.Stop()
	s := Summarize(results)
	if s.Requests != 50 || s.Errors != 10 || s.ByStatus[http.StatusBadGateway] != 10 {
		t.Errorf("summary = %+v, want 50 requests of which 10 failed with 502", s)
	}
	for i := 1; i < len(results); i++ {
		if results[i].Start.Before(results[i-1].Start) {
			t.Fatal("results not in start order")
		}
	}
}

func TestUnreachableTargetIsAFailure(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	run, err := Start(context.Background(), Options{
		URL: url, Workers: 1, Interval: time.Millisecond, MaxRequests: 1, MaxDuration: time.Minute, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, run)
	results := run.Stop()
	if len(results) != 1 || !results[0].Failed() || results[0].FailureCode() != 0 || results[0].Err == "" {
		t.Errorf("results = %+v, want one failure without a response", results)
	}
}

// waitDone waits for a run to use up its request budget.
func waitDone(t *testing.T, run *Run) {
	t.Helper()
	select {
	case <-run.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end after its last request")
	}
}

func TestOnlyLoopback(t *testing.T) {
	_, err := Start(context.Background(), Options{
		URL: "http://192.0.2.1/", Workers: 1, Interval: time.Millisecond, MaxRequests: 1, MaxDuration: time.Second, Timeout: time.Second,
	})
	if err == nil {
		t.Fatal("a non-loopback target was accepted")
	}
}

func TestRequestsPerConnection(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	run, err := Start(context.Background(), Options{
		URL: srv.URL, Workers: 1, Interval: time.Millisecond, MaxRequests: 12, MaxDuration: time.Minute, Timeout: 5 * time.Second,
		RequestsPerConnection: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, run)
	run.Stop()
	if got := conns.Load(); got != 3 {
		t.Errorf("%d connections for 12 requests, want 3 of 4 requests each", got)
	}
}

// Poisson intervals average the interval and vary as much as they average
// (an exponential's coefficient of variation is 1); fixed ones do not vary.
func TestIntervals(t *testing.T) {
	const n = 20_000
	for _, poisson := range []bool{false, true} {
		next := Options{Interval: 100 * time.Millisecond, Poisson: poisson}.intervals(rand.New(rand.NewPCG(1, 2)))
		var sum, sumSq float64
		for range n {
			x := next().Seconds()
			sum, sumSq = sum+x, sumSq+x*x
		}
		mean := sum / n
		cv := math.Sqrt(sumSq/n-mean*mean) / mean
		wantCV := map[bool]float64{false: 0, true: 1}[poisson]
		if math.Abs(mean-0.1) > 0.005 || math.Abs(cv-wantCV) > 0.05 {
			t.Errorf("Poisson %v: mean interval %.4fs, coefficient of variation %.3f; want 0.1s and %v", poisson, mean, cv, wantCV)
		}
	}
}

// constant is a distribution of one duration.
type constant time.Duration

func (c constant) Draw(*rand.Rand) time.Duration { return time.Duration(c) }

// Each request asks for the serve time drawn for it, from the address the
// clients connect from.
func TestServeTimeAndSource(t *testing.T) {
	type seen struct{ serve, from string }
	got := make(chan seen, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		got <- seen{r.Header.Get(ServeTimeHeader), host}
	}))
	srv.Start()
	defer srv.Close()
	run, err := Start(context.Background(), Options{
		URL: srv.URL, Workers: 1, Interval: time.Millisecond, MaxRequests: 3, MaxDuration: time.Minute, Timeout: 5 * time.Second,
		ServeTime: constant(1500 * time.Millisecond), From: netip.MustParseAddr("127.0.77.1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, run)
	run.Stop()
	close(got)
	n := 0
	for s := range got {
		n++
		if s != (seen{"1.5s", "127.0.77.1"}) {
			t.Errorf("request %+v, want a serve time of 1.5s from 127.0.77.1", s)
		}
	}
	if n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	if _, err := Start(context.Background(), Options{URL: srv.URL, Workers: 1, Interval: time.Millisecond, MaxRequests: 1, MaxDuration: time.Minute, Timeout: time.Second,
		From: netip.MustParseAddr("10.0.0.1")}); err == nil {
		t.Error("a source off loopback was accepted")
	}
}
