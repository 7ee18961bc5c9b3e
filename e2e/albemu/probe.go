package albemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// probeResult is one health check's outcome; reason is empty when it
// passed.
type probeResult struct {
	reason, desc string
}

// probeLoop health-checks one target from one node until ctx ends
// (deregistration or its delay's end, or Close). The first check runs at once, then one per interval, each
// using the group's settings of the moment; a settings change starts a
// check at once.
func (e *Emulator) probeLoop(ctx context.Context, tg *targetGroup, reg *registration, rt *route) {
	for {
		e.mu.Lock()
		hc, hcChanged, protocol := tg.hc, tg.hcChanged, tg.hcProtocol
		e.mu.Unlock()

		res := e.probe(ctx, rt.node, rt.target, hc, protocol)
		if ctx.Err() != nil {
			return // a verdict arriving after deregistration must not count
		}
		e.mu.Lock()
		if ctx.Err() == nil {
			rt.observe(res, hc)
			reg.refresh()
			e.notifyLocked()
		}
		e.mu.Unlock()

		t := time.NewTimer(hc.Interval)
		select {
		case <-t.C:
		case <-hcChanged:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// probe performs one health check from node n: an HTTP request, or for protocol TCP a
// connection that opens.
func (e *Emulator) probe(ctx context.Context, n int, t Target, hc HealthCheck, protocol string) probeResult {
	ip, _ := netip.ParseAddr(t.ID) // validated at registration
	if !e.contactable(ip) {
		// Only reachable with AllowNonLoopbackTargets: such targets are
		// never contacted, and pass so control-plane tests see them healthy.
		return probeResult{}
	}
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	if protocol == "TCP" {
		c, err := e.dialLoopback(ctx, n, "tcp", net.JoinHostPort(t.ID, hc.probePort(t.Port)))
		if err != nil {
			return probeResult{ReasonFailedHealthChecks, descriptions[ReasonFailedHealthChecks]}
		}
		_ = c.Close()
		return probeResult{}
	}
	url := "http://" + net.JoinHostPort(t.ID, hc.probePort(t.Port)) + hc.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return probeResult{ReasonFailedHealthChecks, descriptions[ReasonFailedHealthChecks]}
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := e.nodes[n].probes.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return probeResult{ReasonTimeout, descriptions[ReasonTimeout]}
		}
		return probeResult{ReasonFailedHealthChecks, descriptions[ReasonFailedHealthChecks]}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	match, _ := parseMatcher(hc.Matcher) // validated when set
	if !match(resp.StatusCode) {
		return probeResult{ReasonResponseCodeMismatch, fmt.Sprintf("Health checks failed with these codes: [%d]", resp.StatusCode)}
	}
	return probeResult{}
}

// observe applies a check result to one node's health state machine: a
// new target needs one pass; a healthy one turns unhealthy after
// UnhealthyThreshold consecutive failures, and back after HealthyThreshold
// passes.
func (r *route) observe(res probeResult, hc HealthCheck) {
	if res.reason == "" {
		r.okRun, r.failRun = r.okRun+1, 0
		if r.health == StateInitial || (r.health == StateUnhealthy && r.okRun >= hc.HealthyThreshold) {
			r.health = StateHealthy
		}
		return
	}
	r.okRun, r.failRun = 0, r.failRun+1
	// An unhealthy target reports its latest failure.
	if r.health == StateUnhealthy || r.failRun >= hc.UnhealthyThreshold {
		r.health, r.reason, r.desc = StateUnhealthy, res.reason, res.desc
	}
}
