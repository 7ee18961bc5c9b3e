// Package load sends steady HTTP traffic through a load balancer listener
// and records every response: its start, duration and status. It stands for
// the clients of a service during a rollout. Traffic goes to loopback only,
// and every run is bounded in requests and in time.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"sync"
	"time"
)

// Options shape the traffic.
type Options struct {
	// URL is requested over and over; its host must be a loopback IP.
	URL string
	// Workers send requests concurrently, each one at a time.
	Workers int
	// Interval is the time between the starts of one worker's requests:
	// fixed, or with Poisson its mean.
	Interval time.Duration
	// Poisson draws each worker's intervals from an exponential
	// distribution, so the workers' requests together arrive as a Poisson
	// process, as a service's many independent clients make them. Fixed
	// intervals make arrivals at a pod nearly periodic, which no field
	// traffic is.
	Poisson bool
	// MaxRequests and MaxDuration bound the run; it stops at whichever
	// comes first, or at Stop.
	MaxRequests int
	MaxDuration time.Duration
	// Timeout bounds each request.
	Timeout time.Duration
	// RequestsPerConnection, when set, has each worker close its connection
	// after that many requests, as clients with a connection lifetime do:
	// through a Network Load Balancer every connection is a flow, so the
	// traffic then opens new flows steadily while older ones carry requests.
	RequestsPerConnection int
	// ServeTime, when set, draws how long the application works on each
	// request, sent as the ServeTimeHeader, which the local cluster's
	// application honours: slow requests are then in flight when a pod
	// stops, while the load balancer's health checks stay fast.
	ServeTime Durations
	// From, when set, is the loopback address the clients connect from:
	// another pod's, for traffic inside the cluster.
	From netip.Addr
}

// ServeTimeHeader asks the local cluster's application to work that long
// (a Go duration) on the request.
const ServeTimeHeader = "X-Albdrain-Serve-Time"

// Durations is a distribution of durations, such as albemu.LagModel.
type Durations interface {
	Draw(r *rand.Rand) time.Duration
}

// Result is one request.
type Result struct {
	Start    time.Time
	Duration time.Duration
	// Status is the HTTP status; 0 when no response came.
	Status int
	// Err is why no complete response came: a transport error, or a body
	// cut off after the status.
	Err string
}

// Failed reports whether the client saw a failure: no complete response, or
// a status other than 2xx.
func (r Result) Failed() bool { return r.Err != "" || r.Status < 200 || r.Status > 299 }

// FailureCode is the status a failure is counted under: 0 for an incomplete
// response, else the HTTP status.
func (r Result) FailureCode() int {
	if r.Err != "" {
		return 0
	}
	return r.Status
}

// Run is traffic in progress.
type Run struct {
	opts    Options
	client  *http.Client
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	results []Result
	sent    int
}

// Start begins sending.
func Start(ctx context.Context, opts Options) (*Run, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("load target %s: only loopback IPs", opts.URL)
	}
	if opts.Workers < 1 || opts.Interval <= 0 || opts.MaxRequests < 1 || opts.MaxDuration <= 0 || opts.Timeout <= 0 || opts.RequestsPerConnection < 0 {
		return nil, errors.New("load options: workers, interval, max requests, max duration and timeout must be positive, requests per connection not negative")
	}
	if opts.From.IsValid() && !opts.From.IsLoopback() {
		return nil, fmt.Errorf("load source %s: only loopback IPs", opts.From)
	}
	dialer := &net.Dialer{}
	if opts.From.IsValid() {
		dialer.LocalAddr = &net.TCPAddr{IP: opts.From.AsSlice()}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.MaxDuration)
	r := &Run{
		opts:   opts,
		cancel: cancel,
		done:   make(chan struct{}),
		client: &http.Client{
			Timeout: opts.Timeout,
			// Clients keep connections to the load balancer open, as browsers
			// and service clients do; the pods' connections are the ALB's.
			Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: opts.Workers, IdleConnTimeout: 30 * time.Second},
		},
	}
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Go(func() { r.worker(ctx) })
	}
	go func() {
		wg.Wait()
		close(r.done)
	}()
	return r, nil
}

// Done is closed when the run has ended: its bounds were reached, or Stop
// was called, and no request is in flight.
func (r *Run) Done() <-chan struct{} { return r.done }

// Stop ends the run, waits for requests in flight and returns every result
// in the order the requests started.
func (r *Run) Stop() []Result {
	r.cancel()
	<-r.done
	r.client.CloseIdleConnections()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]Result(nil), r.results...)
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Counts reports how many requests have completed so far and how many of
// those failed, for progress displays.
func (r *Run) Counts() (done, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, res := range r.results {
		if res.Failed() {
			failed++
		}
	}
	return len(r.results), failed
}

// take claims one request of the budget.
func (r *Run) take() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent >= r.opts.MaxRequests {
		return false
	}
	r.sent++
	return true
}

func (r *Run) worker(ctx context.Context) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	interval := r.opts.intervals(rng)
	due := time.Now()
	wait := time.NewTimer(0)
	defer wait.Stop()
	for n := 1; ctx.Err() == nil && r.take(); n++ {
		var serve time.Duration
		if r.opts.ServeTime != nil {
			serve = r.opts.ServeTime.Draw(rng)
		}
		res := r.do(ctx, r.opts.RequestsPerConnection > 0 && n%r.opts.RequestsPerConnection == 0, serve)
		r.mu.Lock()
		r.results = append(r.results, res)
		r.mu.Unlock()
		// The next request is due an interval after this one was; one
		// that took longer is followed at once, with no burst to catch up.
		if due = due.Add(interval()); due.Before(time.Now()) {
			due = time.Now()
		}
		wait.Reset(time.Until(due))
		select {
		case <-ctx.Done():
		case <-wait.C:
		}
	}
}

// intervals returns the source of a worker's intervals, drawing from rng.
func (o Options) intervals(rng *rand.Rand) func() time.Duration {
	if !o.Poisson {
		return func() time.Duration { return o.Interval }
	}
	return func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(o.Interval)) }
}

// do sends one request, closing its connection afterwards when last, and
// asking the application to work serve on it when set.
func (r *Run) do(ctx context.Context, last bool, serve time.Duration) Result {
	start := time.Now()
	res := Result{Start: start}
	// Requests in flight when the run stops are left to finish: cutting
	// them off would count as client-side failures that no user caused.
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, r.opts.URL, nil)
	if err == nil {
		req.Close = last
		if serve > 0 {
			req.Header.Set(ServeTimeHeader, serve.String())
		}
		var resp *http.Response
		if resp, err = r.client.Do(req); err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			res.Status = resp.StatusCode
		}
	}
	if err != nil {
		res.Err = err.Error()
	}
	res.Duration = time.Since(start)
	return res
}

// Summary counts a run's results.
type Summary struct {
	Requests int
	Errors   int
	// ByStatus counts failed requests by Result.FailureCode.
	ByStatus map[int]int
}

// Summarize counts results.
func Summarize(results []Result) Summary {
	s := Summary{Requests: len(results), ByStatus: map[int]int{}}
	for _, r := range results {
		if r.Failed() {
			s.Errors++
			s.ByStatus[r.FailureCode()]++
		}
	}
	return s
}
