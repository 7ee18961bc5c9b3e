package helper

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// peers counts the sockets bound to the pod's shared name: the leader's
// listener and one per follower it accepted.
func peers(t *testing.T, uid string) int {
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), shareName+uid+"\n")
}

// The six held containers of one pod run their helpers at once: one of
// them asks the watcher, once, and reports the pod's end, once; every
// helper waits for quiet and ends with the pod's outcome. Before, each
// asked on its own, so the watcher refused the fifth and sixth with 429
// and counted an end per container.
func TestOneHoldPerPod(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("helpers share a hold through an abstract unix socket, on Linux only")
	}
	const containers = 6
	answer := make(chan struct{})
	f, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		<-answer
		_ = jsonAnswer(w, contract.HoldResponse{Outcome: contract.OutcomeDeregistering, BoundMillis: time.Minute.Milliseconds(),
			Traffic: &contract.Traffic{BoundMillis: time.Minute.Milliseconds()}})
	})
	env := podEnv(url)
	env.PodUID = fmt.Sprintf("uid-%d", time.Now().UnixNano())
	results := make(chan contract.HoldEnd, containers)
	for range containers {
		go func() {
			res, _ := Run(context.Background(), waitSpec(time.Minute, time.Minute), env, quietOpts(t))
			results <- res
		}()
	}
	deadline := time.Now().Add(patience)
	for peers(t, env.PodUID) < containers {
		if time.Now().After(deadline) {
			t.Errorf("%d of %d helpers met on the pod's socket", peers(t, env.PodUID), containers)
			break
		}
		time.Sleep(10 * time.Millisecond) // polling the socket table, an event with no notification
	}
	close(answer)
	for range containers {
		if res := <-results; res.Outcome != contract.OutcomeQuiet || !res.Quiet {
			t.Errorf("helper ended %+v, want the pod's quiet end", res)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 1 || len(f.ends) != 1 {
		t.Errorf("%d hold requests and %d end reports for one pod, want one of each", len(f.requests), len(f.ends))
	}
}
