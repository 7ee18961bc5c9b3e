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

// probeLoop health-checks one registration until ctx ends (deregistration
// or Close). The first check runs at once, then one per interval, each
// using the group's settings of the moment; a settings change starts a
// check at once.
func (e *Emulator) probeLoop(ctx context.Context, tg *targetGroup, reg *registration) {
	for {
		e.mu.Lock()
		hc, hcChanged := tg.hc, tg.hcChanged
		e.mu.Unlock()

		res := e.probe(ctx, reg.target, hc)
		if ctx.Err() != nil {
			return // a verdict arriving after deregistration must not count
		}
		e.mu.Lock()
		if ctx.Err() == nil {
			reg.observe(res, hc)
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

// probe performs one HTTP health check.
func (e *Emulator) probe(ctx context.Context, t Target, hc HealthCheck) probeResult {
	ip, _ := netip.ParseAddr(t.ID) // validated at registration
	if !e.contactable(ip) {
		// Only reachable with AllowNonLoopbackTargets: such targets are
		// never contacted, and pass so control-plane tests see them healthy.
		return probeResult{}
	}
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(t.ID, hc.probePort(t.Port)) + hc.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return probeResult{ReasonFailedHealthChecks, descriptions[ReasonFailedHealthChecks]}
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := e.probes.Do(req)
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

// observe applies a check result to the health state machine: a new target
// needs one pass; a healthy one turns unhealthy after UnhealthyThreshold
// consecutive failures, and back after HealthyThreshold passes.
func (r *registration) observe(res probeResult, hc HealthCheck) {
	if res.reason == "" {
		r.okRun, r.failRun = r.okRun+1, 0
		if r.state == StateInitial || (r.state == StateUnhealthy && r.okRun >= hc.HealthyThreshold) {
			r.setHealth(StateHealthy, "", "")
		}
		return
	}
	r.okRun, r.failRun = 0, r.failRun+1
	// An unhealthy target reports its latest failure.
	if r.state == StateUnhealthy || r.failRun >= hc.UnhealthyThreshold {
		r.setHealth(StateUnhealthy, res.reason, res.desc)
	}
}
