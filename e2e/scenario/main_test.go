package scenario_test

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

// shared is the one cluster every scenario of this test binary runs on:
// starting a control plane costs seconds, a scenario's namespace isolates it.
var shared *cluster.Cluster

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "albdrain-e2e-")
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
		c, err := cluster.Start(ctx, cluster.Options{Dir: dir, HelperBinary: helper, Timings: cluster.DefaultTimings(), Log: log})
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
