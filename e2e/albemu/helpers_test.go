package albemu_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/albdrain/albdrain/e2e/albemu"
)

// testTimeout bounds every wait; generous because the machine may be loaded,
// and never reached when things work.
const testTimeout = 20 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// fastHealth checks often enough for tests to move quickly, with a timeout
// loose enough that a loaded machine does not fail checks by accident.
var fastHealth = albemu.HealthCheck{
	Path:               "/healthz",
	Interval:           100 * time.Millisecond,
	Timeout:            90 * time.Millisecond,
	HealthyThreshold:   2,
	UnhealthyThreshold: 2,
}

// newClient is an SDK client for the emulator. backoff replaces the
// retryer's delay (nil: retry at once) and maxAttempts its attempt budget.
func newClient(t *testing.T, emu *albemu.Emulator, maxAttempts int, backoff retry.BackoffDelayerFunc) *awselbv2.Client {
	t.Helper()
	if backoff == nil {
		backoff = func(int, error) (time.Duration, error) { return 0, nil }
	}
	cfg, err := config.LoadDefaultConfig(t.Context(),
		config.WithRegion("eu-west-1"),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.Backoff = backoff
				o.RateLimiter = ratelimit.None
			})
		}),
	)
	if err != nil {
		t.Fatalf("load SDK config: %v", err)
	}
	return awselbv2.NewFromConfig(cfg, func(o *awselbv2.Options) { o.BaseEndpoint = aws.String(emu.URL()) })
}

// target is a real HTTP server on its own loopback IP, standing in for a
// pod. Its health endpoint answers healthCode; "/" answers 200 with the
// target's address; "/block" waits until release is closed or the request
// ends, announcing itself on arrived.
type target struct {
	albemu.Target
	srv        *http.Server
	healthCode atomic.Int32
	healthHits atomic.Int64
	hits       atomic.Int64
	arrived    chan struct{}
	release    chan struct{}
}

func startTarget(t *testing.T, ip string) *target {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	tt, err := albemu.ParseTarget(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tgt := &target{Target: tt, arrived: make(chan struct{}, 16), release: make(chan struct{})}
	tgt.healthCode.Store(http.StatusOK)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		tgt.healthHits.Add(1)
		w.WriteHeader(int(tgt.healthCode.Load()))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		tgt.hits.Add(1)
		_, _ = io.WriteString(w, tgt.String())
	})
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		select {
		case tgt.arrived <- struct{}{}:
		default: // nobody is counting arrivals beyond the buffer
		}
		select {
		case <-tgt.release:
			_, _ = io.WriteString(w, "released")
		case <-r.Context().Done():
		}
	})
	tgt.srv = &http.Server{Handler: mux}
	go func() { _ = tgt.srv.Serve(ln) }()
	t.Cleanup(tgt.kill)
	return tgt
}

// kill stops the server abruptly, like a container exiting: the listener
// and every connection close at once.
func (tg *target) kill() { _ = tg.srv.Close() }

// waitArrived waits until a /block request reached the target.
func (tg *target) waitArrived(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-tg.arrived:
	case <-ctx.Done():
		t.Fatalf("no request reached %s", tg)
	}
}

// get fetches path through a listener, returning status and body.
func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// mustGet is get for requests that must get an answer.
func mustGet(t *testing.T, ctx context.Context, url string) (int, string) {
	t.Helper()
	status, body, err := get(ctx, url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return status, body
}

// dataPlane is an emulator with one target group and a listener for it.
type dataPlane struct {
	emu *albemu.Emulator
	arn string
	ln  *albemu.Listener
}

func newDataPlane(t *testing.T, opts albemu.Options, spec albemu.TargetGroupSpec) *dataPlane {
	t.Helper()
	emu := albemu.NewForTest(t, opts)
	if spec.Name == "" {
		spec.Name = "web"
	}
	if spec.HealthCheck == (albemu.HealthCheck{}) {
		spec.HealthCheck = fastHealth
	}
	arn, err := emu.CreateTargetGroup(spec)
	if err != nil {
		t.Fatalf("create target group: %v", err)
	}
	ln, err := emu.AddListener(arn, "")
	if err != nil {
		t.Fatalf("add listener: %v", err)
	}
	return &dataPlane{emu: emu, arn: arn, ln: ln}
}

// registerHealthy registers targets and waits for them to be healthy.
func (d *dataPlane) registerHealthy(t *testing.T, ctx context.Context, targets ...*target) {
	t.Helper()
	for _, tg := range targets {
		if err := d.emu.RegisterTargets(d.arn, tg.Target); err != nil {
			t.Fatalf("register %s: %v", tg, err)
		}
	}
	for _, tg := range targets {
		d.waitState(t, ctx, tg, albemu.StateHealthy)
	}
}

func (d *dataPlane) waitState(t *testing.T, ctx context.Context, tg *target, state string) {
	t.Helper()
	if err := d.emu.WaitTargetState(ctx, d.arn, tg.Target, state); err != nil {
		t.Fatal(err)
	}
}

func (d *dataPlane) health(t *testing.T, tg *target) albemu.TargetHealth {
	t.Helper()
	th, err := d.emu.TargetHealth(d.arn, tg.Target)
	if err != nil {
		t.Fatal(err)
	}
	return th[0]
}

// waitNotRouted waits until the data plane no longer routes to tg: the
// propagation lag of its deregistration has passed.
func (d *dataPlane) waitNotRouted(t *testing.T, ctx context.Context, tg *target) {
	t.Helper()
	err := d.emu.Wait(ctx, func() bool {
		routes, err := d.emu.RoutingTargets(d.arn)
		if err != nil {
			return true
		}
		for _, r := range routes {
			if r == tg.Target {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

// statusCounts sends n GETs and tallies the statuses.
func statusCounts(t *testing.T, ctx context.Context, url string, n int) map[int]int {
	t.Helper()
	counts := map[int]int{}
	for range n {
		status, _ := mustGet(t, ctx, url)
		counts[status]++
	}
	return counts
}

func errorCode(err error) string {
	var apiErr interface{ ErrorCode() string }
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return fmt.Sprintf("not an API error: %v", err)
}
