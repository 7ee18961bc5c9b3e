package integration

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/albdrain/albdrain/drain/watcher/release"
	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
)

// testQuietOnceTheALBStopsSending holds a pod under policy quiet while
// clients keep sending through the emulated ALB, which reuses kept-alive
// connections to the pod and health-checks it on fresh ones: the watcher
// hands the hold to the helper once the target drains, and the helper
// releases the pod only after the ALB's last request to it, reporting the
// end, which the watcher counts as quiet.
func testQuietOnceTheALBStopsSending(t *testing.T, env *kubetest.Env) {
	s := newScenario(t, env, true)
	s.policy = release.PolicyQuiet
	// The ALB goes on routing to the pod for a while after deregistration.
	s.emu.SetPropagationLag(500 * time.Millisecond)
	pod, other := s.newPod("web-1"), s.newPod("web-2")
	target, otherTarget := s.target(pod), s.target(other)
	s.serve(target)
	s.serve(otherTarget)
	s.register(target, albemu.StateHealthy)
	s.register(otherTarget, albemu.StateHealthy)
	ln, err := s.emu.AddListener(s.tg, "")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var failed atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			resp, err := client.Get(ln.URL())
			if err != nil || resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
			if err == nil {
				resp.Body.Close()
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	s.eventually("the ALB sends the pod requests", func() bool { return routedTo(s.emu, target) > 0 })

	s.startWatcher(s.metrics)
	s.delete(pod)
	res := s.hold(pod, 200*time.Millisecond)
	s.eventually("the hold reaches the watcher", func() bool { return testutil.ToFloat64(s.metrics.HoldsInFlight) == 1 })
	if err := s.emu.DeregisterTargets(s.tg, target); err != nil {
		t.Fatal(err)
	}
	r := s.result(res)
	released := time.Now()
	if r.Outcome != contract.OutcomeQuiet || !r.Quiet || r.Signal != contract.SignalSockDiag {
		t.Fatalf("hold ended %+v, want quiet through sock_diag", r)
	}
	last := lastRoutedTo(s.emu, target)
	if quiet := released.Sub(last); quiet < r.QuietPeriod() {
		t.Errorf("released %v after the ALB's last request to the pod, within the %v quiet period", quiet, r.QuietPeriod())
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed", n)
	}
	s.eventually("the helper's end is counted", func() bool {
		return testutil.ToFloat64(s.metrics.Holds.WithLabelValues(string(contract.OutcomeQuiet))) == 1
	})
	s.wantEvents(pod, contract.ReasonHoldStarted, contract.ReasonHoldDeregistering, contract.ReasonHoldReleased)
}

func routedTo(emu *albemu.Emulator, t albemu.Target) int {
	n := 0
	for _, r := range emu.Requests() {
		if r.Target == t.String() {
			n++
		}
	}
	return n
}

func lastRoutedTo(emu *albemu.Emulator, t albemu.Target) time.Time {
	var last time.Time
	for _, r := range emu.Requests() {
		if r.Target == t.String() && r.Time.After(last) {
			last = r.Time
		}
	}
	return last
}
