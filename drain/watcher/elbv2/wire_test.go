package elbv2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/albdrain/albdrain/drain/watcher/metrics"
)

// These tests check the client's wiring (the call timeout, the buckets
// inside the SDK's retry loop, one observation per attempt): middleware of
// the unmodified SDK, visible only on the wire. So the SDK talks to a server
// that speaks ELBv2's wire format (the query protocol, XML answers and
// errors) with answers fixed per test, rather than to the ELBv2 emulator:
// the root module cannot import the harness, and ELBv2's semantics (target
// states, draining, throttling budgets) are the emulator's, tested with it
// in e2e/faults.

const wireNamespace = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"

// wireELBv2 answers ELBv2 calls: a known target group's calls succeed with
// an empty result, any other group is TargetGroupNotFound, and the faults
// set throttle an action or hang every call.
type wireELBv2 struct {
	url   string
	group string

	mu       sync.Mutex
	calls    map[string]int
	throttle map[string]bool
	hang     bool
}

func newWireELBv2(t *testing.T) *wireELBv2 {
	t.Helper()
	w := &wireELBv2{group: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1",
		calls: map[string]int{}, throttle: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

func (w *wireELBv2) serve(rw http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	action := r.PostForm.Get("Action")
	w.mu.Lock()
	w.calls[action]++
	throttle, hang := w.throttle[action], w.hang
	w.mu.Unlock()
	switch {
	case hang:
		<-r.Context().Done()
	case throttle:
		wireError(rw, "Throttling", "Rate exceeded")
	case r.PostForm.Get("TargetGroupArn") != w.group:
		wireError(rw, "TargetGroupNotFound", "One or more target groups not found")
	default:
		rw.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(rw, `<%[1]sResponse xmlns="%[2]s"><%[1]sResult/><ResponseMetadata><RequestId>wire</RequestId></ResponseMetadata></%[1]sResponse>`, action, wireNamespace)
	}
}

func wireError(rw http.ResponseWriter, code, msg string) {
	rw.Header().Set("Content-Type", "text/xml")
	rw.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(rw, `<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>wire</RequestId></ErrorResponse>`, wireNamespace, code, msg)
}

func (w *wireELBv2) set(f func(w *wireELBv2)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w)
}

func (w *wireELBv2) callCount(action string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[action]
}

// wireConfig is an AWS configuration as the SDK resolves it, with static
// credentials and the standard retryer, its backoff shortened.
func wireConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = time.Millisecond })
		},
	}
}

func TestEveryAttemptIsMeasured(t *testing.T) {
	w := newWireELBv2(t)
	m := metrics.New()
	c := NewClient(wireConfig(), ClientOptions{Endpoint: w.url, Metrics: m})
	ctx := context.Background()
	const op = "DescribeTargetHealth"
	in := &awselbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(w.group)}

	if _, err := c.DescribeTargetHealth(ctx, in); err != nil {
		t.Fatal(err)
	}
	w.set(func(w *wireELBv2) { w.throttle[op] = true })
	if _, err := c.DescribeTargetHealth(ctx, in); err == nil {
		t.Fatal("throttled call succeeded")
	}

	type counts struct{ Successes, ThrottledAttempts, Throttles, Errors, ServerCalls float64 }
	got := counts{
		testutil.ToFloat64(m.ELBv2Requests.WithLabelValues(op, metrics.ResultSuccess)),
		testutil.ToFloat64(m.ELBv2Requests.WithLabelValues(op, metrics.ResultThrottled)),
		testutil.ToFloat64(m.ELBv2Throttles.WithLabelValues(op)),
		testutil.ToFloat64(m.ELBv2Requests.WithLabelValues(op, metrics.ResultError)),
		float64(w.callCount(op)),
	}
	// The SDK's standard retryer makes 3 attempts; each is counted.
	want := counts{Successes: 1, ThrottledAttempts: 3, Throttles: 3, Errors: 0, ServerCalls: 4}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("counts (-want +got):\n%s", d)
	}
}

func TestMissingGroupIsAnError(t *testing.T) {
	w := newWireELBv2(t)
	m := metrics.New()
	c := NewClient(wireConfig(), ClientOptions{Endpoint: w.url, Metrics: m})
	_, err := c.DescribeTargetHealth(context.Background(), &awselbv2.DescribeTargetHealthInput{
		TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/none/0")})
	var nf *types.TargetGroupNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v, want TargetGroupNotFound", err)
	}
	if got := testutil.ToFloat64(m.ELBv2Requests.WithLabelValues("DescribeTargetHealth", metrics.ResultError)); got != 1 {
		t.Errorf("errors = %v, want 1", got)
	}
}

func TestBucketsLimitAttempts(t *testing.T) {
	w := newWireELBv2(t)
	// One token, never refilled within the test.
	c := NewClient(wireConfig(), ClientOptions{Endpoint: w.url, Describe: rate.NewLimiter(rate.Every(time.Hour), 1)})
	in := &awselbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(w.group)}
	if _, err := c.DescribeTargetHealth(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	// The limiter refuses at once a wait beyond the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.DescribeTargetHealth(ctx, in); err == nil {
		t.Error("a call beyond the bucket went through")
	}
	if n := w.callCount("DescribeTargetHealth"); n != 1 {
		t.Errorf("server saw %d calls, want 1", n)
	}
	// Other operations draw on the other bucket (unlimited here).
	if _, err := c.DeregisterTargets(context.Background(), &awselbv2.DeregisterTargetsInput{
		TargetGroupArn: aws.String(w.group), Targets: []types.TargetDescription{{Id: aws.String("127.0.0.9")}},
	}); err != nil {
		t.Errorf("DeregisterTargets: %v", err)
	}
}

// The buckets sit inside the retry loop: a throttled call's retries wait
// for tokens like first attempts, so the bucket caps the attempts the
// server sees, not just the calls.
func TestRetriesSpendTheBucket(t *testing.T) {
	w := newWireELBv2(t)
	const op = "DescribeTargetHealth"
	w.set(func(w *wireELBv2) { w.throttle[op] = true })
	// Two tokens, never refilled within the test: the retryer's third attempt finds none.
	c := NewClient(wireConfig(), ClientOptions{Endpoint: w.url, Describe: rate.NewLimiter(rate.Every(time.Hour), 2)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.DescribeTargetHealth(ctx, &awselbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(w.group)}); err == nil {
		t.Fatal("throttled call succeeded")
	}
	if n := w.callCount(op); n != 2 {
		t.Errorf("server saw %d attempts, want the bucket's 2", n)
	}
}

// A DescribeTargetHealth that never answers must fail within the client's
// call timeout, so that the poller reports it to the holds and polls again
// instead of waiting on it: without the bound the poll loop of that target
// group stops, and every hold on the group runs to its deadline without
// reaching its fallback.
func TestHungCallIsBounded(t *testing.T) {
	w := newWireELBv2(t)
	w.set(func(w *wireELBv2) { w.hang = true })
	m := metrics.New()
	c := NewClient(wireConfig(), ClientOptions{Endpoint: w.url, Metrics: m, CallTimeout: 200 * time.Millisecond})
	p := NewPoller(c, 10*time.Millisecond, m)
	reports, stop := p.Subscribe(w.group, Target{ID: "10.0.0.1", Port: 8080})
	defer stop()
	// Two failed polls in a row: the loop went on after the first hung call.
	for i := range 2 {
		if r := <-reports; r.Err == nil {
			t.Fatalf("poll %d under a hung API: %+v, want an error", i, r)
		}
	}
}
