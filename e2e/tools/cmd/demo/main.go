// Command demo reproduces the ALB 502s of terminating pods on a local
// control plane and shows albdrain removing them. It runs the rolling-restart
// scenario three times on one local cluster (see package cluster), whose
// emulated ALB has several nodes, each applying a deregistration after its
// own lag drawn from a heavy-tailed model: without protection, with a fixed
// preStop sleep at the lag's p90, and with albdrain. It prints a table of
// requests, failures, hold times, true stops and ELBv2 calls, writes an SVG
// timeline of failures, holds and true stops, and, when the environment
// variable DEMO_JSON names a file, the same figures as JSON.
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
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/scenario"
)

type options struct {
	outDir, goCmd, jsonPath string
	fixedSleep              time.Duration
	timings                 cluster.Timings
}

func main() {
	o := options{timings: cluster.FieldTimings()}
	lag := o.timings.LagModel()
	flag.StringVar(&o.outDir, "out", filepath.Join("e2e", "demo-out"), "directory for the SVG timeline")
	flag.DurationVar(&o.fixedSleep, "fixed-sleep", 0, "preStop sleep of the fixed-sleep run (whole seconds); 0 is the p90 of the lag a pod sees")
	flag.StringVar(&o.goCmd, "go", "go", "go command that builds albdrain's in-pod helper")
	flag.Var(&lag, "lag", "each ALB node's lag model, e.g. lognormal:median=2s,p99=10s or 1.5s")
	flag.IntVar(&o.timings.Nodes, "nodes", o.timings.Nodes, "ALB nodes")
	flag.Uint64Var(&o.timings.Seed, "seed", 1, "seed of the lag draws")
	flag.Parse()
	o.timings.Lag = &lag
	o.jsonPath = os.Getenv("DEMO_JSON")
	if o.fixedSleep == 0 {
		o.fixedSleep = p90Sleep(o.timings)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// p90Sleep is the fixed sleep a careful guess would pick: the p90 of what
// a pod waits for, the load balancer controller's reaction plus the
// slowest node's lag, rounded up to whole seconds.
func p90Sleep(t cluster.Timings) time.Duration {
	wait := (t.LBCMinLag+t.LBCMaxLag)/2 + t.LagModel().QuantileOfMax(0.9, max(t.Nodes, 1))
	return time.Duration(math.Ceil(wait.Seconds())) * time.Second
}

func run(ctx context.Context, out io.Writer, o options) (err error) {
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	ws, err := cluster.OpenWorkspace("demo", out)
	if err != nil {
		return err
	}
	defer func() { ws.Close(err) }()

	t := o.timings
	fmt.Fprintf(out, `albdrain demo: a Deployment of 3 pods behind an emulated ALB (ip targets), steady
traffic through the ALB, and a rolling restart, three times:
  baseline     no protection: pods stop as soon as they are deleted
  fixed-sleep  a preStop sleep of %s: the p90 of the lag a pod sees, a careful guess
  albdrain     the namespace opted in: each pod is held until the ALB is done with it
Timings: the ALB has %d nodes; each applies a change after its own lag, drawn from
%s (seed %d); the load balancer controller reacts after %s-%s and re-reads
target health for readiness gates every %s; deregistration delay %s.

`, o.fixedSleep, max(t.Nodes, 1), t.LagModel(), t.Seed, t.LBCMinLag, t.LBCMaxLag, t.LBCRequeue, t.DeregistrationDelay)

	c, err := ws.StartCluster(ctx, o.goCmd, t)
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
		ws.Say("run %d of 3: %s", len(results)+1, p)
		res, err := scenario.Run(ctx, c, scenario.Spec{
			Protection: p,
			Action:     scenario.RollingRestart,
			FixedSleep: o.fixedSleep,
			Progress:   func(line string) { ws.Say("  %s", line) },
		})
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	runs := summarize(results)

	fmt.Fprintln(out)
	writeTable(out, runs)
	fmt.Fprintln(out)
	if err := writeGateWaits(ctx, out, c.Env.Client, results[len(results)-1].Namespace, t.LBCRequeue); err != nil {
		return err
	}
	svgPath := filepath.Join(o.outDir, "timeline.svg")
	if err := os.WriteFile(svgPath, timeline(results), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nTimeline of failures, holds and true stops: %s\n", svgPath)
	if o.jsonPath != "" {
		if err := writeJSON(o.jsonPath, runs); err != nil {
			return err
		}
		fmt.Fprintf(out, "Figures as JSON: %s\n", o.jsonPath)
	}
	ws.Say("done")
	return nil
}

// trueStop is when the last ALB node stopped routing new requests to the
// pod, or false if the emulator has no complete record.
func trueStop(r *scenario.Result, pod string) (time.Time, bool) {
	s, ok := r.Stops[pod]
	if !ok || !s.Complete() {
		return time.Time{}, false
	}
	return s.TrueStop(), true
}
