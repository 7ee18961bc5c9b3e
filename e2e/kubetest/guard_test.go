package kubetest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/reaper"
)

// abandonEnv makes this test binary start a control plane and abandon it.
const abandonEnv = "ALBDRAIN_KUBETEST_ABANDON"

func TestMain(m *testing.M) {
	if os.Getenv(abandonEnv) != "" {
		if _, _, err := Run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		reaper.Abandoned()
	}
	os.Exit(m.Run())
}

// TestControlPlaneDiesWithItsTest checks that kube-apiserver and etcd die
// with a test process killed before it could stop them: a timed-out test
// once left both running.
func TestControlPlaneDiesWithItsTest(t *testing.T) {
	_, pids := reaper.Abandon(t, abandonEnv)
	// etcd, kube-apiserver and the reaper.
	if len(pids) != 3 {
		t.Fatalf("want etcd, kube-apiserver and the reaper, got processes %v", pids)
	}
	reaper.AwaitExit(t, pids, time.Minute)
}
