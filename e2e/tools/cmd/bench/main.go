// Command bench measures albdrain's costs (see package bench): admission
// latency, hold precision, the ELBv2 call budget and memory at scale, each
// beside a baseline from the same run; with -only=rotation, a node drain of
// hundreds of pods behind three manager processes (not in the default set:
// it runs for many minutes). It prints a table and, when the
// environment variable BENCH_JSON names a file, writes the figures there as
// one flat JSON object.
//
// It needs KUBEBUILDER_ASSETS to name the built kube-apiserver, etcd and
// kube-controller-manager (`make bench` sees to that), and the go command
// to run the handler's Go benchmark and build albdrain's binaries. Run it
// from albdrain's module.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/tools/bench"
)

// trafficLine is the scenarios' per-second progress line.
var trafficLine = regexp.MustCompile(`^\d+\.\ds\s+\d+ requests`)

// measurements are the parts -only can pick, in the order they run;
// rotation (minutes, many processes) only when named.
var (
	measurements = []string{"handler", "create", "holds", "elbv2", "memory"}
	optional     = []string{"rotation"}
)

type options struct {
	goCmd     string
	only      []string
	benchtime string
	creates   int
	jsonPath  string
	holds     holdFlags
	rotation  rotationFlags
}

// rotationFlags shape the rotation measurement.
type rotationFlags struct {
	pods   int
	rate   float64
	spread time.Duration
	svg    string
}

// holdFlags shape the hold-precision section.
type holdFlags struct {
	replicas, rollouts, nodes int
	fixedRollouts             int
	seed                      uint64
	hcDraining                bool
	lag                       albemu.LagModel
	rate, lowRate             float64
	settle                    time.Duration
	// policies names the policies compared; empty compares them all.
	policies []string
}

func main() {
	var o options
	o.holds.lag = mustLag(cluster.FieldLag)
	flag.StringVar(&o.goCmd, "go", "go", "go command that runs the handler benchmark and builds albdrain's binaries")
	only := flag.String("only", strings.Join(measurements, ","), "measurements to run, comma-separated, of "+strings.Join(append(measurements, optional...), ","))
	flag.StringVar(&o.benchtime, "benchtime", "1s", "-benchtime of the Go benchmarks (admission handler, poll round)")
	flag.IntVar(&o.creates, "creates", 800, "pod CREATEs timed with the webhook and as many without")
	flag.IntVar(&o.holds.replicas, "replicas", 10, "holds: Deployment size in each rollout; 10 as in a rollout that a 180 s sleep makes crawl")
	flag.IntVar(&o.holds.rollouts, "rollouts", 1, "holds: rolling restarts per albdrain policy at -rate, each drawing its lags from a seed of its own (-seed, -seed+1, ...)")
	flag.IntVar(&o.holds.fixedRollouts, "fixed-rollouts", 0, "holds: rolling restarts per fixed sleep (0: as -rollouts)")
	flag.Var(&o.holds.lag, "lag", "holds: each ALB node's lag model, e.g. lognormal:median=2s,p99=10s, uniform:min=1s,max=5s or straggler:min=1s,max=3s,slow=0.2,by=4")
	flag.IntVar(&o.holds.nodes, "nodes", 3, "holds: ALB nodes")
	flag.Uint64Var(&o.holds.seed, "seed", 1, "holds: seed of the lag draws")
	flag.BoolVar(&o.holds.hcDraining, "hc-draining", false, "holds: the ALB keeps health-checking draining targets")
	flag.Float64Var(&o.holds.rate, "rate", 40, "holds: traffic in requests per second per pod")
	flag.Float64Var(&o.holds.lowRate, "low-rate", 2, "holds: traffic of each albdrain policy's extra low-traffic rollout (0: none)")
	flag.DurationVar(&o.holds.settle, "settle", 0, "holds: the draining policy's --settle-time; 0 is the lag model's p50 for the slowest node plus one poll")
	policies := flag.String("policies", "", "holds: the policies compared, comma-separated, of quiet,deregistered,draining,fixed_p50,fixed_p90,fixed_p99 (default all)")
	flag.IntVar(&o.rotation.pods, "rotation-pods", 500, "rotation: managed pods a node drain evicts (the curve also runs 10 and 100)")
	flag.Float64Var(&o.rotation.rate, "rotation-rate", 100, "rotation: Poisson traffic in requests per second over all target groups")
	flag.DurationVar(&o.rotation.spread, "rotation-spread", time.Minute, "rotation: the drain evicts the pods evenly over this")
	flag.StringVar(&o.rotation.svg, "rotation-svg", filepath.Join("e2e", "demo-out", "rotation-scaling.svg"), "rotation: SVG of the scaling curves, beside the demo's timeline")
	flag.Parse()
	if *policies != "" {
		o.holds.policies = strings.Split(*policies, ",")
	}
	o.only = strings.Split(*only, ",")
	for _, m := range o.only {
		if !slices.Contains(measurements, m) && !slices.Contains(optional, m) {
			fmt.Fprintf(os.Stderr, "bench: unknown measurement %q in -only\n", m)
			os.Exit(2)
		}
	}
	if o.rotation.pods < 1 || o.rotation.rate <= 0 || o.rotation.spread <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -rotation-pods, -rotation-rate and -rotation-spread must be positive")
		os.Exit(2)
	}
	if o.holds.replicas < 1 || o.holds.rollouts < 1 || o.holds.nodes < 1 || o.holds.rate <= 0 || o.holds.lowRate < 0 || o.holds.fixedRollouts < 0 {
		fmt.Fprintln(os.Stderr, "bench: -replicas, -rollouts, -nodes and -rate must be positive, -low-rate and -fixed-rollouts not negative")
		os.Exit(2)
	}
	o.jsonPath = os.Getenv("BENCH_JSON")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func mustLag(s string) albemu.LagModel {
	m, err := albemu.ParseLag(s)
	if err != nil {
		panic(err)
	}
	return m
}

func run(ctx context.Context, out io.Writer, o options) (err error) {
	ws, err := cluster.OpenWorkspace("bench", out)
	if err != nil {
		return err
	}
	defer func() { ws.Close(err) }()
	say := ws.Say

	progress := func(f string, args ...any) { say("  "+f, args...) }
	report := &bench.Report{Machine: bench.DescribeMachine()}
	fmt.Fprintf(out, "albdrain benchmarks on %s\n\n", report.Machine)
	want := func(m string) bool { return slices.Contains(o.only, m) }
	add := func(s *bench.Section, err error) error {
		if err == nil {
			report.Sections = append(report.Sections, s)
		}
		return err
	}

	if want("handler") {
		say("admission handler: go test -bench BenchmarkAdmission (starts its own kube-apiserver)")
		if err := add(bench.MeasureHandler(ctx, o.goCmd, o.benchtime)); err != nil {
			return err
		}
	}
	var manager string
	if want("create") || want("memory") || want("rotation") {
		say("building albdrain's manager")
		if manager, err = bench.BuildManager(ctx, o.goCmd, ws.Dir); err != nil {
			return err
		}
	}
	if want("create") {
		say("pod CREATE latency through the apiserver, with and without albdrain's webhook")
		if err := add(bench.MeasureCreate(ctx, bench.CreateOptions{N: o.creates, Manager: manager, Dir: ws.Dir, Progress: progress})); err != nil {
			return err
		}
	}
	if want("holds") {
		if err := add(measureHolds(ctx, ws, o)); err != nil {
			return err
		}
	}
	if want("elbv2") {
		say("ELBv2: the watcher's poll round, go test -bench BenchmarkPollRound")
		if err := add(bench.MeasurePollRound(ctx, o.goCmd, o.benchtime)); err != nil {
			return err
		}
		say("ELBv2 budget")
		if err := add(bench.MeasureBudget(ctx, bench.BudgetOptions{
			Pods: 1000, TargetGroups: 50, Spread: time.Minute, DeregistrationDelay: 30 * time.Second, LBCLag: time.Second,
			Progress: progress,
		})); err != nil {
			return err
		}
	}
	if want("memory") {
		say("memory")
		if err := add(bench.MeasureMemory(ctx, bench.MemoryOptions{
			Pods: 12_000, Managed: 10_000, Services: 5000, Manager: manager, Dir: ws.Dir, Settle: 5 * time.Second, Progress: progress,
		})); err != nil {
			return err
		}
	}
	if want("rotation") {
		if err := measureRotation(ctx, ws, o, manager, add); err != nil {
			return err
		}
	}

	fmt.Fprintln(out)
	report.WriteTable(out)
	if o.jsonPath != "" {
		if err := report.WriteJSON(o.jsonPath); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nFigures as JSON: %s\n", o.jsonPath)
	}
	say("done")
	return nil
}

// quietPeriodMax is the webhook's default --quiet-period-max, which the
// local cluster keeps.
const quietPeriodMax = 30 * time.Second

// settle is the draining policy's settle time: -settle, or the lag
// model's p50 for the slowest node plus one poll.
func settle(h holdFlags, t cluster.Timings) time.Duration {
	if h.settle != 0 {
		return h.settle
	}
	return (h.lag.QuantileOfMax(0.5, h.nodes) + t.WatcherPoll).Round(100 * time.Millisecond)
}

// measureHolds runs the hold-precision measurement on a local cluster
// whose ALB draws its lags from the model given.
func measureHolds(ctx context.Context, ws *cluster.Workspace, o options) (_ *bench.Section, err error) {
	h := o.holds
	t := cluster.FieldTimings()
	t.Lag, t.Nodes, t.Seed, t.HealthCheckDraining = &h.lag, h.nodes, h.seed, h.hcDraining
	policies, err := bench.SelectPolicies(bench.HoldPolicies(settle(h, t), t.QuietPeriod, quietPeriodMax), h.policies)
	if err != nil {
		return nil, err
	}
	ws.Say("hold precision: ALB of %d nodes, lags %s, seed %d", h.nodes, h.lag, h.seed)
	c, err := ws.StartCluster(ctx, o.goCmd, t)
	if err != nil {
		return nil, err
	}
	defer func() {
		if stopErr := c.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	ws.Say("hold precision: rolling restarts behind the emulated ALB")
	return bench.MeasureHolds(ctx, c, t, bench.HoldOptions{
		Replicas: int32(h.replicas), Rollouts: h.rollouts, FixedRollouts: h.fixedRollouts, Rate: h.rate, LowRate: h.lowRate,
		Policies: policies,
		Progress: func(line string) {
			// The per-second traffic counts would drown the steps.
			if !trafficLine.MatchString(line) {
				ws.Say("  %s", line)
			}
		},
	})
}
