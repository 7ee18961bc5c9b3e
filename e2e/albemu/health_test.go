package albemu_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/albemu"
)

func TestHealthCheckTransitions(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	// A long interval holds the target in its first check until the test
	// lets that check finish.
	slow := albemu.HealthCheck{Path: "/block", Interval: time.Hour, Timeout: 30 * time.Minute, HealthyThreshold: 3, UnhealthyThreshold: 2}
	d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{HealthCheck: slow})
	a := startTarget(t, "127.0.0.20")
	if err := d.emu.RegisterTargets(d.arn, a.Target); err != nil {
		t.Fatal(err)
	}

	a.waitArrived(t, ctx)
	if got := d.health(t, a); got.State != albemu.StateInitial || got.Reason != albemu.ReasonInitialHealthChecking {
		t.Fatalf("during the first check: %+v, want initial/Elb.InitialHealthChecking", got)
	}
	if status, _ := mustGet(t, ctx, d.ln.URL()); status != http.StatusServiceUnavailable {
		t.Fatalf("target still in initial checks: got %d, want 503", status)
	}
	close(a.release)
	d.waitState(t, ctx, a, albemu.StateHealthy)
	if got := d.health(t, a); got.Reason != "" || got.Description != "" {
		t.Fatalf("healthy target has reason %q description %q, want none", got.Reason, got.Description)
	}

	fast := fastHealth
	fast.HealthyThreshold, fast.UnhealthyThreshold = 3, 2
	if err := d.emu.SetHealthCheck(d.arn, fast); err != nil {
		t.Fatal(err)
	}
	base := a.healthHits.Load()
	a.healthCode.Store(http.StatusServiceUnavailable)
	d.waitState(t, ctx, a, albemu.StateUnhealthy)
	got := d.health(t, a)
	if got.Reason != albemu.ReasonResponseCodeMismatch || got.Description != "Health checks failed with these codes: [503]" {
		t.Fatalf("unhealthy: %+v, want Target.ResponseCodeMismatch with the code", got)
	}
	if n := a.healthHits.Load() - base; n < int64(fast.UnhealthyThreshold) {
		t.Fatalf("unhealthy after %d failed checks, want at least the threshold %d", n, fast.UnhealthyThreshold)
	}

	base = a.healthHits.Load()
	a.healthCode.Store(http.StatusOK)
	d.waitState(t, ctx, a, albemu.StateHealthy)
	if n := a.healthHits.Load() - base; n < int64(fast.HealthyThreshold) {
		t.Fatalf("healthy again after %d passing checks, want at least the threshold %d", n, fast.HealthyThreshold)
	}
}

func TestHealthCheckFailureReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		ip         string
		fail       func(*target)
		hc         albemu.HealthCheck
		wantReason string
	}{
		{
			name:       "wrong status",
			ip:         "127.0.0.21",
			fail:       func(tg *target) { tg.healthCode.Store(http.StatusNotFound) },
			hc:         fastHealth,
			wantReason: albemu.ReasonResponseCodeMismatch,
		},
		{
			name: "no answer within the timeout",
			ip:   "127.0.0.22",
			// The health path now points at an endpoint that never answers.
			hc:         albemu.HealthCheck{Path: "/block", Interval: 100 * time.Millisecond, Timeout: 50 * time.Millisecond, UnhealthyThreshold: 2},
			wantReason: albemu.ReasonTimeout,
		},
		{
			name:       "connection refused",
			ip:         "127.0.0.23",
			fail:       (*target).kill,
			hc:         fastHealth,
			wantReason: albemu.ReasonFailedHealthChecks,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{})
			a := startTarget(t, tc.ip)
			d.registerHealthy(t, ctx, a)

			if tc.fail != nil {
				tc.fail(a)
			}
			if err := d.emu.SetHealthCheck(d.arn, tc.hc); err != nil {
				t.Fatal(err)
			}
			err := d.emu.Wait(ctx, func() bool {
				got := d.health(t, a)
				return got.State == albemu.StateUnhealthy && got.Reason == tc.wantReason
			})
			if err != nil {
				t.Fatalf("%v; last %+v, want unhealthy/%s", err, d.health(t, a), tc.wantReason)
			}
		})
	}
}

func TestWaitTargetStateUnknownGroup(t *testing.T) {
	t.Parallel()
	emu := albemu.NewForTest(t, albemu.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	err := emu.WaitTargetState(ctx, "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0", albemu.Target{ID: "127.0.0.1"}, albemu.StateHealthy)
	if errorCode(err) != albemu.CodeTargetGroupNotFound {
		t.Fatalf("got %v, want TargetGroupNotFound at once", err)
	}
}
