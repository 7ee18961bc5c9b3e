package helper

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/albdrain/albdrain/drain/helper/traffic"
	"github.com/albdrain/albdrain/internal/contract"
)

// servePod serves HTTP on ip like a pod and returns its port.
func servePod(t *testing.T, ip string) int32 {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// alb sends requests to the pod over one kept-alive connection from the
// address from, until stop is closed, and records when its last request was sent.
type alb struct {
	mu       sync.Mutex
	lastSent time.Time
	done     chan struct{}
}

func startALB(t *testing.T, from, podIP string, port int32, stop <-chan struct{}) *alb {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	tr := &http.Transport{DialContext: d.DialContext, MaxConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	url := "http://" + net.JoinHostPort(podIP, strconv.Itoa(int(port))) + "/"
	a := &alb{done: make(chan struct{})}
	sent := make(chan struct{})
	go func() {
		defer close(a.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for first := true; ; first = false {
			a.mu.Lock()
			a.lastSent = time.Now()
			a.mu.Unlock()
			if resp, err := (&http.Client{Transport: tr}).Get(url); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if first {
				close(sent)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	<-sent // the kept-alive connection exists before the hold
	t.Cleanup(func() { <-a.done })
	return a
}

func (a *alb) last() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastSent
}

// deregistering answers like the watcher under the "quiet" policy, once
// the load balancer lb (if any) has stopped sending.
func deregistering(bound time.Duration, stop chan struct{}, lb **alb) func(int, http.ResponseWriter, *http.Request) {
	var once sync.Once
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		once.Do(func() { close(stop) })
		if *lb != nil {
			<-(*lb).done
		}
		_ = jsonAnswer(w, contract.HoldResponse{
			Outcome: contract.OutcomeDeregistering,
			Traffic: &contract.Traffic{BoundMillis: bound.Milliseconds()},
		})
	}
}

func TestQuietPolicyReleasesOnceRequestsStop(t *testing.T) {
	const podIP, lbIP = "127.0.31.1", "127.0.31.2"
	port := servePod(t, podIP)
	stop := make(chan struct{})
	lb := startALB(t, lbIP, podIP, port, stop)
	// The load balancer sends until the watcher answers, as during the
	// propagation lag, and stops before the answer.
	f, url := startWatcher(t, deregistering(time.Minute, stop, &lb))
	spec := waitSpec(time.Minute, time.Minute)
	spec.Ports = []int32{port}
	spec.QuietPeriod = 100 * time.Millisecond
	env := podEnv(url)
	env.PodIP = netip.MustParseAddr(podIP)

	res, err := Run(context.Background(), spec, env, quietOpts(t))
	released := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != contract.OutcomeQuiet || !res.Quiet || res.Signal != contract.SignalSockDiag {
		t.Fatalf("Run = %+v, want quiet through sock_diag", res)
	}
	if quiet := released.Sub(lb.last()); quiet < spec.QuietPeriod {
		t.Errorf("released %v after the last request on the kept-alive connection, within the %v quiet period", quiet, spec.QuietPeriod)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ends) != 1 || f.ends[0].Outcome != contract.OutcomeQuiet || f.ends[0].Name != "web-1" || f.ends[0].QuietMillis != 100 || f.ends[0].Signal != contract.SignalSockDiag {
		t.Errorf("reported ends %+v, want one quiet end of web-1 after 100ms through sock_diag", f.ends)
	}
}

// The bound ends a hold whose traffic never stops, and it counts from the
// watcher's answer, whatever the quiet period's sizing still needs: a rate
// estimate that waited for a long window of arrivals kept such holds to
// their max-hold.
func TestQuietPolicyBoundEndsABusyHold(t *testing.T) {
	for i, tc := range []struct {
		name string
		set  func(*contract.Spec)
	}{
		{"never quiet", func(s *contract.Spec) { s.QuietPeriod = time.Hour }},
		// A period of many gaps outlasts the bound; sized from a window of
		// QuietPeriodMax/k (an hour here), as before, it would have held the
		// pod past its bound to max-hold. (k = 1 would make one gap's
		// silence count as quiet.)
		{"a period sized from an hour of arrivals", func(s *contract.Spec) { s.QuietGaps, s.QuietPeriodMax = 1000, 1000*time.Hour }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			podIP, lbIP := fmt.Sprintf("127.0.32.%d", 2*i+1), fmt.Sprintf("127.0.32.%d", 2*i+2)
			port := servePod(t, podIP)
			stop := make(chan struct{})
			defer close(stop)
			startALB(t, lbIP, podIP, port, stop)
			var none *alb
			f, url := startWatcher(t, deregistering(50*time.Millisecond, make(chan struct{}), &none))
			spec := waitSpec(time.Minute, time.Minute)
			spec.Ports = []int32{port}
			tc.set(&spec)
			env := podEnv(url)
			env.PodIP = netip.MustParseAddr(podIP)

			res, _ := Run(context.Background(), spec, env, quietOpts(t))
			if res.Outcome != contract.OutcomeBound || res.Quiet {
				t.Errorf("Run = %+v, want bound", res)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.ends) != 1 || f.ends[0].Outcome != contract.OutcomeBound || time.Duration(f.ends[0].HeldMillis)*time.Millisecond >= spec.MaxHold {
				t.Errorf("reported ends %+v, want one bound end, held less than the %v max-hold", f.ends, spec.MaxHold)
			}
		})
	}
}

func TestMaxHoldCutsTheQuietPeriodShort(t *testing.T) {
	_, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		answerOutcome(w, contract.OutcomeDeregistered)
	})
	spec := waitSpec(5*time.Second, time.Hour) // long enough for the answer on a loaded machine
	spec.QuietPeriod = time.Hour
	res, _ := Run(context.Background(), spec, podEnv(url), quietOpts(t))
	if res.Outcome != contract.OutcomeDeregistered || res.Quiet {
		t.Errorf("Run = %+v, want deregistered but not quiet", res)
	}
}

func TestFallbackSourceIsReported(t *testing.T) {
	_, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		answerOutcome(w, contract.OutcomeDeregistered)
	})
	opts := quietOpts(t)
	opts.Source = traffic.ProcNet{Root: "procnet/testdata"}
	res, _ := Run(context.Background(), waitSpec(time.Minute, time.Minute), podEnv(url), opts)
	if res.Signal != contract.SignalProcNet || !res.Quiet {
		t.Errorf("Run = %+v, want quiet seen through procnet", res)
	}
}
