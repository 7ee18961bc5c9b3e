package scenario_test

import (
	"os"
	"testing"

	"github.com/albdrain/albdrain/e2e/cluster"
)

// shared is the one cluster every scenario of this test binary runs on:
// starting a control plane costs seconds, a scenario's namespace isolates it.
var shared *cluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(cluster.RunTests(m, "albdrain-e2e-", cluster.DefaultTimings(), func(c *cluster.Cluster) { shared = c }))
}
