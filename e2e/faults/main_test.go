// Package faults_test puts albdrain through faults on the local cluster
// (package cluster): ELBv2 throttled, down and slow during a rollout, the
// watcher killed, unreachable or cut off from the apiserver, the webhook
// unreachable, and hostile or odd input to its endpoints. Each test states
// what the design promises under its fault and checks that, not an
// absence of client errors where the design allows some.
//
// It is its own test binary with its own cluster, so it runs alongside the
// scenarios of package scenario rather than after them.
package faults_test

import (
	"os"
	"testing"

	"github.com/albdrain/albdrain/e2e/cluster"
)

// shared is the one cluster every test of this binary runs on; the tests
// are sequential because faults are injected cluster-wide.
var shared *cluster.Cluster

// timings are the cluster's: the hold bounds the tests check against.
var timings = cluster.DefaultTimings()

func TestMain(m *testing.M) {
	os.Exit(cluster.RunTests(m, "albdrain-faults-", timings, func(c *cluster.Cluster) { shared = c }))
}
