// Package helper is the in-pod side of a hold, run as a container's preStop
// by the albdrain-hold binary. In wait mode it watches the pod's load-balancer
// traffic (drain/helper/traffic) from the start, asks the watcher to hold the pod
// until the load balancer is done with it or, under the "quiet" policy, has
// begun deregistering it everywhere, falls back to a fixed sleep when the
// watcher cannot tell, then waits until no load-balancer traffic has reached
// the pod for a quiet period sized by its traffic; in sleep mode it just
// sleeps. Either way it then runs the container's own preStop. Every wait is
// bounded by max-hold, and after the watcher's answer by the bound it
// sends; a pod the watcher says is not going away (a container restarted
// by a probe) is released at once. The helpers of a pod's containers share
// one hold (share.go).
package helper

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/albdrain/albdrain/drain/helper/traffic"
	"github.com/albdrain/albdrain/internal/contract"
)

// Env is what the pod tells the helper through the downward API.
type Env struct {
	PodName, PodNamespace, PodUID string
	// PodIP is the pod's IP; the helper dials the watcher from it (the
	// watcher checks it) and the quiet period watches connections to it.
	PodIP netip.Addr
	// HostIP is the node's IP, whose connections (the kubelet's probes) are
	// not load-balancer traffic.
	HostIP netip.Addr
	// WatcherURL is the watcher's base URL; empty means no watcher.
	WatcherURL string
	// WatcherCA is a PEM bundle to trust for an https WatcherURL, from pods
	// injected before the trust volume; trusted besides TrustDir's bundle.
	WatcherCA string
	// TrustDir holds the pod's token and the watcher's CA bundle (the
	// contract's TokenFile and CABundleFile), read afresh at each attempt;
	// empty for pods injected before the trust volume.
	TrustDir string
}

// EnvFromOS reads Env from the process environment. An unparsable pod IP is
// left unset: the helper then dials from any address and watches every
// local address, which is still correct, just less precise. So is an
// unparsable host IP (a pod injected before the helper read it): the
// kubelet's probes then count as traffic.
func EnvFromOS() Env {
	ip, _ := netip.ParseAddr(os.Getenv(contract.EnvPodIP))
	host, _ := netip.ParseAddr(os.Getenv(contract.EnvHostIP))
	return Env{
		PodName:      os.Getenv(contract.EnvPodName),
		PodNamespace: os.Getenv(contract.EnvPodNamespace),
		PodUID:       os.Getenv(contract.EnvPodUID),
		PodIP:        ip.Unmap(),
		HostIP:       host.Unmap(),
		WatcherURL:   os.Getenv(contract.EnvWatcherURL),
		WatcherCA:    os.Getenv(contract.EnvWatcherCA),
		TrustDir:     os.Getenv(contract.EnvTrustDir),
	}
}

// Options tune the helper; the zero value is the production behaviour.
type Options struct {
	// ProcRoot is where proc is mounted, for the /proc/net/tcp fallback;
	// default "/proc".
	ProcRoot string
	// Source reads the socket table; default the best of sock_diag and
	// ProcRoot's tables that works.
	Source traffic.Source
	// Log receives progress; default text to stderr.
	Log *slog.Logger
	// Stdout and Stderr are given to an exec then-hook; default the process's.
	Stdout, Stderr io.Writer
	// SampleInterval is how often the socket tables are read; default 200ms.
	SampleInterval time.Duration
	// RetryBackoff is the first pause between attempts to reach the watcher,
	// doubling up to MaxBackoff; defaults 200ms and 2s.
	RetryBackoff, MaxBackoff time.Duration
	// MaxFailures is how many attempts in a row may fail before the helper
	// gives up on the watcher and falls back; default 6.
	MaxFailures int
	// EstablishedAfter is how long an attempt the watcher received must
	// have lasted to count as an established hold whose loss (a replica
	// going away) starts the failure count afresh; default 5s.
	EstablishedAfter time.Duration
	// AttemptTimeout bounds an attempt's dial, name resolution included,
	// and its TLS handshake, each; default 5s.
	AttemptTimeout time.Duration
	// CAWait is how long the watcher's certificate may go untrusted before
	// such failures count towards MaxFailures: after a CA change the kubelet
	// takes up to about a minute to bring the new bundle into the pod, and
	// the helper re-reads it at each attempt; default 2m. The hold's
	// max-hold bounds it too.
	CAWait time.Duration
}

func (o Options) withDefaults() Options {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = 200 * time.Millisecond
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 6
	}
	if o.EstablishedAfter <= 0 {
		o.EstablishedAfter = 5 * time.Second
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 5 * time.Second
	}
	if o.CAWait <= 0 {
		o.CAWait = 2 * time.Minute
	}
	return o
}

// Run executes spec: the hold its mode asks for, then the then-hook, and
// says how the hold ended (zero in sleep mode). The returned error is the
// then-hook's; the hold itself always ends, by max-hold at the latest.
func Run(ctx context.Context, spec contract.Spec, env Env, opts Options) (contract.HoldEnd, error) {
	opts = opts.withDefaults()
	var res contract.HoldEnd
	if spec.Mode == contract.ModeSleep {
		opts.Log.Info("sleeping", "for", spec.MaxHold)
		sleep(ctx, spec.MaxHold)
	} else {
		res = wait(ctx, spec, env, opts)
	}
	if spec.Then == nil {
		return res, nil
	}
	return res, runThen(ctx, spec.Then, env.PodIP, opts)
}

// wait is the wait-mode hold. What follows the watcher's answer depends on
// it (Answer.WaitsForQuiet): a quiet wait (after the fixed sleep, for a
// fallback) within the hold's bound as the watcher gave it, or max-hold
// when it gave none, or none. After a hand-off, the quiet wait decides the
// outcome and the helper reports it.
func wait(parent context.Context, spec contract.Spec, env Env, opts Options) contract.HoldEnd {
	start := time.Now()
	ctx, cancel := context.WithTimeout(parent, spec.MaxHold)
	defer cancel()
	w := monitorTraffic(ctx, spec, env, opts)
	a, pod := askOnce(ctx, env, spec, opts)
	// Logged as on the wire, where a hand-off reads deregistering.
	opts.Log.Info("watcher answered", "outcome", a.Response().Outcome, "message", a.Message)
	end := contract.HoldEnd{Outcome: a.Outcome(), Signal: w.Signal()}
	if !a.WaitsForQuiet() {
		pod.release()
		end.HeldMillis = time.Since(start).Milliseconds()
		opts.Log.Info("hold ended without a quiet period", "outcome", end.Outcome, "after", time.Since(start))
		return end
	}
	// The hold's bound counts from the answer: the quiet period is sized
	// while it runs, so no sizing can carry the hold past it.
	wt := a.Wait()
	quietCtx := ctx
	if wt.Bound > 0 {
		var cancelBound context.CancelFunc
		quietCtx, cancelBound = context.WithTimeout(ctx, wt.Bound)
		defer cancelBound()
	}
	if end.Outcome == contract.OutcomeFallback {
		opts.Log.Info("falling back to a fixed sleep", "for", spec.Fallback)
		sleep(quietCtx, spec.Fallback)
	}
	hints := traffic.HintsFrom(wt.Traffic)
	quiet, period := w.WaitQuiet(quietCtx, hints)
	end.Quiet, end.QuietMillis = quiet, period.Milliseconds()
	// The pod is quiet when each of its held containers' ports is.
	end = pod.end(quietCtx, end)
	if a.Handoff != nil {
		end.Outcome = contract.OutcomeBound
		if end.Quiet {
			end.Outcome = contract.OutcomeQuiet
		}
	}
	end.HeldMillis = time.Since(start).Milliseconds()
	opts.Log.Info("hold ended", "outcome", end.Outcome, "quiet", end.Quiet, "quietPeriod", end.QuietPeriod(), "signal", end.Signal, "after", time.Since(start), "sources", w.Sources(hints))
	if a.Handoff != nil && pod.toLeader == nil {
		reportEnd(parent, env, opts, end)
	}
	return end
}

// monitorTraffic starts watching the pod's load-balancer traffic, saying in
// the log how it is seen.
func monitorTraffic(ctx context.Context, spec contract.Spec, env Env, opts Options) *traffic.Monitor {
	ports := make([]uint16, len(spec.Ports))
	for i, p := range spec.Ports {
		ports[i] = uint16(p)
	}
	f := traffic.Filter{PodIP: env.PodIP, NodeIP: env.HostIP, Ports: ports}
	src := opts.Source
	if src == nil {
		var sdErr, procErr error
		src, sdErr, procErr = traffic.Open(opts.ProcRoot, f)
		switch {
		case src == nil:
			opts.Log.Info("cannot read the socket tables; skipping the quiet period", "sockDiagErr", sdErr, "procErr", procErr)
		case sdErr != nil:
			opts.Log.Info("sock_diag unavailable; sampling /proc/net/tcp, which sees new connections but not requests on kept-alive ones", "err", sdErr)
		}
	}
	period := traffic.Period{Gaps: spec.QuietGaps, Min: spec.QuietPeriod, Max: spec.QuietPeriodMax}
	return traffic.Start(ctx, src, f, opts.SampleInterval, period)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
