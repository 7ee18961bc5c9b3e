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
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/albdrain/albdrain/e2e/cluster"
)

// shared is the one cluster every test of this binary runs on; the tests
// are sequential because faults are injected cluster-wide.
var shared *cluster.Cluster

// timings are the cluster's: the hold bounds the tests check against.
var timings = cluster.DefaultTimings()

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "albdrain-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logFile, err := os.Create(filepath.Join(dir, "cluster.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, nil))
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	klog.SetSlogLogger(log)

	code := func() int {
		ctx := context.Background()
		helper, err := cluster.BuildHelper(ctx, "go", dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		c, err := cluster.Start(ctx, cluster.Options{Dir: dir, HelperBinary: helper, Timings: timings, Log: log})
		if err != nil {
			fmt.Fprintln(os.Stderr, "start the local cluster:", err)
			return 1
		}
		shared = c
		defer func() {
			if err := c.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "stop the local cluster:", err)
			}
		}()
		return m.Run()
	}()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "logs of the local cluster kept in", dir)
		return code
	}
	os.RemoveAll(dir)
	return 0
}
