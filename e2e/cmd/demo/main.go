// Command demo reproduces the ALB 502s of terminating pods on a local
// control plane and shows albdrain removing them. It runs the rolling-restart
// scenario three times on one local cluster (see package cluster): without
// protection, with a fixed preStop sleep, and with albdrain. It prints a
// table of requests, failures, hold times and ELBv2 calls, writes an SVG
// timeline of failures and holds, and, when the environment variable
// DEMO_JSON names a file, the same figures as JSON.
//
// It needs KUBEBUILDER_ASSETS to name the built kube-apiserver, etcd and
// kube-controller-manager (`make demo` sees to that), and the go command to
// build albdrain's in-pod prestop. Run it from albdrain's module.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/scenario"
)

func main() {
	outDir := flag.String("out", filepath.Join("e2e", "demo-out"), "directory for the SVG timeline")
	fixedSleep := flag.Duration("fixed-sleep", 2*time.Second, "preStop sleep of the fixed-sleep run (whole seconds)")
	goCmd := flag.String("go", "go", "go command that builds albdrain's in-pod helper")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *goCmd, *outDir, *fixedSleep, os.Getenv("DEMO_JSON")); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, goCmd, outDir string, fixedSleep time.Duration, jsonPath string) (err error) {
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return fmt.Errorf("KUBEBUILDER_ASSETS is not set: run `make demo`, which builds the control plane first")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "albdrain-demo-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintln(os.Stderr, "logs of the local cluster kept in", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	log, logFile, err := cluster.LogToFile(filepath.Join(dir, "cluster.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()

	t := cluster.DefaultTimings()
	fmt.Fprintf(out, `albdrain demo: a Deployment of 3 pods behind an emulated ALB (ip targets), steady
traffic through the ALB, and a rolling restart, three times:
  baseline     no protection: pods stop as soon as they are deleted
  fixed-sleep  a preStop sleep of %s, the usual guess (about the ALB's lag, without the controller's)
  albdrain     the namespace opted in: each pod is held until the ALB is done with it
Timings: the ALB's data plane follows its API after %s, the load balancer controller
reacts after %s-%s, deregistration delay %s.

`, fixedSleep, t.PropagationLag, t.LBCMinLag, t.LBCMaxLag, t.DeregistrationDelay)

	say("building albdrain's in-pod helper (albdrain-hold)")
	helper, err := cluster.BuildHelper(ctx, goCmd, dir)
	if err != nil {
		return err
	}
	say("starting kube-apiserver, etcd, kube-controller-manager, the ALB emulator, the kubelet and load balancer controller stand-ins, and albdrain")
	c, err := cluster.Start(ctx, cluster.Options{Dir: dir, HelperBinary: helper, Timings: t, Log: log})
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := c.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()

	var results []*scenario.Result
	for _, p := range []scenario.Protection{scenario.Baseline, scenario.FixedSleep, scenario.Albdrain} {
		say("run %d of 3: %s", len(results)+1, p)
		res, err := scenario.Run(ctx, c, scenario.Spec{
			Protection: p,
			Action:     scenario.RollingRestart,
			FixedSleep: fixedSleep,
			Progress:   func(line string) { say("  %s", line) },
		})
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	runs := summarize(results)

	fmt.Fprintln(out)
	writeTable(out, runs)
	svgPath := filepath.Join(outDir, "timeline.svg")
	if err := os.WriteFile(svgPath, timeline(results), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nTimeline of failures and holds: %s\n", svgPath)
	if jsonPath != "" {
		if err := writeJSON(jsonPath, runs); err != nil {
			return err
		}
		fmt.Fprintf(out, "Figures as JSON: %s\n", jsonPath)
	}
	say("done")
	return nil
}
