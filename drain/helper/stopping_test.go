package helper

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// TestStoppingWatchersBoundTheRetries checks that a helper whose every
// attempt meets a replica that is stopping (a rollout of albdrain with no
// replica left to take the hold) gives up after MaxFailures attempts and
// falls back, rather than retrying until max-hold.
func TestStoppingWatchersBoundTheRetries(t *testing.T) {
	f, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "watcher stopping; retry", http.StatusServiceUnavailable)
	})
	opts := quietOpts(t)
	res, _ := Run(context.Background(), waitSpec(time.Minute, time.Millisecond), podEnv(url), opts)
	if res.Outcome != contract.OutcomeFallback {
		t.Errorf("outcome %q, want fallback", res.Outcome)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != opts.MaxFailures {
		t.Errorf("%d attempts, want MaxFailures (%d)", len(f.requests), opts.MaxFailures)
	}
}
