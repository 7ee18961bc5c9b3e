package helper

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// patience is how long a test waits for a hold that must end long before
// it: max-hold and the quiet period are an hour, the bounds milliseconds.
const patience = 30 * time.Second

// Every answer ends the hold by the bound the watcher gave, or at once,
// even though the pod never becomes quiet: before, only deregistering was
// bounded and every other answer waited for quiet until max-hold.
func TestEveryAnswerEndsByItsBound(t *testing.T) {
	const bound = 50 * time.Millisecond
	for _, tc := range []struct {
		resp      contract.HoldResponse
		wantQuiet bool
	}{
		{resp: contract.HoldResponse{Outcome: contract.OutcomeNotRegistered}},
		{resp: contract.HoldResponse{Outcome: contract.OutcomeTimeout}},
		{resp: contract.HoldResponse{Outcome: contract.OutcomeFallback, BoundMillis: bound.Milliseconds()}},
		{resp: contract.HoldResponse{Outcome: contract.OutcomeDeregistered, BoundMillis: bound.Milliseconds()}},
		{resp: contract.HoldResponse{Outcome: contract.OutcomeDrainingSettled, BoundMillis: bound.Milliseconds()}},
		{resp: contract.HoldResponse{Outcome: contract.OutcomeDeregistering, BoundMillis: bound.Milliseconds()}},
	} {
		t.Run(string(tc.resp.Outcome), func(t *testing.T) {
			_, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				_ = jsonAnswer(w, tc.resp)
			})
			spec := waitSpec(time.Hour, time.Hour)
			spec.QuietPeriod = time.Hour // never quiet
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			res, _ := Run(ctx, spec, podEnv(url), quietOpts(t))
			if ctx.Err() != nil {
				t.Fatalf("the hold outlasted %v after a %s answer bounded by %v", patience, tc.resp.Outcome, bound)
			}
			if res.Quiet {
				t.Errorf("Run = %+v, want not quiet", res)
			}
		})
	}
}

// A container killed by a liveness or startup probe runs its preStop while
// the pod stays: the watcher answers 409 and the helper releases at once,
// instead of falling back to the fixed sleep and then waiting for a quiet
// that never comes while the pod is still a healthy target.
func TestNotTerminatingReleasesAtOnce(t *testing.T) {
	f, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, contract.NotTerminatingMessage, http.StatusConflict)
	})
	spec := waitSpec(time.Hour, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	res, _ := Run(ctx, spec, podEnv(url), quietOpts(t))
	if ctx.Err() != nil {
		t.Fatalf("the helper held a pod that is not going away for %v", patience)
	}
	if res.Outcome != contract.OutcomeNotTerminating || len(f.requests) != 1 {
		t.Errorf("Run = %+v after %d requests, want not_terminating after 1", res, len(f.requests))
	}
}

// A watcher behind dropped packets (a default-deny NetworkPolicy, a
// security group without the port): every attempt lasts its whole
// handshake timeout, longer than EstablishedAfter. Such attempts never
// reached the watcher, so they count as failures and the helper falls back
// after MaxFailures of them; before, each one reset the count and the hold
// ran to max-hold.
func TestTimedOutAttemptsCountAsFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept() // and never answer the TLS handshake
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	opts := quietOpts(t)
	opts.AttemptTimeout = 20 * time.Millisecond
	opts.EstablishedAfter = time.Millisecond
	spec := waitSpec(time.Hour, time.Millisecond)
	spec.QuietPeriod = 0
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	res, _ := Run(ctx, spec, podEnv("https://"+ln.Addr().String()), opts)
	if ctx.Err() != nil {
		t.Fatalf("no fallback within %v of attempts that all time out", patience)
	}
	if res.Outcome != contract.OutcomeFallback {
		t.Errorf("outcome %q, want fallback", res.Outcome)
	}
}

// An end report the watcher drops (a replica going away, a slow check of
// the caller) is sent again: a lost report leaves the pod's hold without
// an outcome.
func TestDroppedEndReportIsRetried(t *testing.T) {
	f, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		_ = jsonAnswer(w, contract.HoldResponse{Outcome: contract.OutcomeDeregistering, BoundMillis: time.Minute.Milliseconds()})
	})
	f.dropEnds = 2
	if res, _ := Run(context.Background(), waitSpec(time.Minute, time.Minute), podEnv(url), quietOpts(t)); res.Outcome != contract.OutcomeQuiet {
		t.Fatalf("Run = %+v, want quiet", res)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ends) != 1 {
		t.Errorf("%d end reports arrived after two were dropped, want 1", len(f.ends))
	}
}
