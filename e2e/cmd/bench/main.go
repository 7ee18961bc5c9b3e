// Command bench measures albdrain's costs (see package bench): admission
// latency, hold precision, the ELBv2 call budget and memory at scale, each
// beside a baseline from the same run. It prints a table and, when the
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
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/albdrain/albdrain/e2e/bench"
	"github.com/albdrain/albdrain/e2e/cluster"
)

// trafficLine is the scenarios' per-second progress line.
var trafficLine = regexp.MustCompile(`^\d+\.\ds\s+\d+ requests`)

// measurements are the parts -only can pick, in the order they run.
var measurements = []string{"handler", "create", "holds", "elbv2", "memory"}

type options struct {
	goCmd     string
	only      []string
	benchtime string
	creates   int
	replicas  int
	rollouts  int
	settle    time.Duration
	jsonPath  string
}

func main() {
	var o options
	flag.StringVar(&o.goCmd, "go", "go", "go command that runs the handler benchmark and builds albdrain's binaries")
	only := flag.String("only", strings.Join(measurements, ","), "measurements to run, comma-separated, of "+strings.Join(measurements, ","))
	flag.StringVar(&o.benchtime, "benchtime", "1s", "-benchtime of the Go benchmarks (admission handler, poll round)")
	flag.IntVar(&o.creates, "creates", 800, "pod CREATEs timed with the webhook and as many without")
	flag.IntVar(&o.replicas, "replicas", 8, "Deployment size in the hold-precision rollouts")
	flag.IntVar(&o.rollouts, "rollouts", 3, "rolling restarts under albdrain in the hold-precision measurement")
	flag.DurationVar(&o.settle, "settle", 0, "albdrain's --settle-time in the hold-precision rollouts; 0 is the ALB's propagation lag plus one poll interval")
	flag.Parse()
	o.only = strings.Split(*only, ",")
	for _, m := range o.only {
		if !slices.Contains(measurements, m) {
			fmt.Fprintf(os.Stderr, "bench: unknown measurement %q in -only\n", m)
			os.Exit(2)
		}
	}
	o.jsonPath = os.Getenv("BENCH_JSON")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, o options) (err error) {
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return fmt.Errorf("KUBEBUILDER_ASSETS is not set: run `make bench`, which builds the control plane first")
	}
	dir, err := os.MkdirTemp("", "albdrain-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintln(os.Stderr, "logs kept in", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	log, logFile, err := cluster.LogToFile(filepath.Join(dir, "bench.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()

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
	if want("create") || want("memory") {
		say("building albdrain's manager")
		if manager, err = bench.BuildManager(ctx, o.goCmd, dir); err != nil {
			return err
		}
	}
	if want("create") {
		say("pod CREATE latency through the apiserver, with and without albdrain's webhook")
		if err := add(bench.MeasureCreate(ctx, bench.CreateOptions{N: o.creates, Manager: manager, Dir: dir, Progress: progress})); err != nil {
			return err
		}
	}
	if want("holds") {
		if err := measureHolds(ctx, o, dir, log, say, add); err != nil {
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
			Pods: 10_000, Managed: 2000, Manager: manager, Dir: dir, Settle: 5 * time.Second, Progress: progress,
		})); err != nil {
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

// measureHolds runs the hold-precision measurement on the whole local
// cluster.
func measureHolds(ctx context.Context, o options, dir string, log *slog.Logger, say func(string, ...any),
	add func(*bench.Section, error) error) (err error) {
	say("hold precision: building albdrain's in-pod helper and starting the local cluster")
	helper, err := cluster.BuildHelper(ctx, o.goCmd, dir)
	if err != nil {
		return err
	}
	t := cluster.DefaultTimings()
	c, err := cluster.Start(ctx, cluster.Options{Dir: dir, HelperBinary: helper, Timings: t, Log: log})
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := c.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	settle := o.settle
	if settle == 0 {
		settle = t.PropagationLag + t.WatcherPoll
	}
	say("hold precision: rolling restarts behind the emulated ALB")
	return add(bench.MeasureHolds(ctx, c, t, bench.HoldOptions{
		Replicas: int32(o.replicas), Rollouts: o.rollouts, Settle: settle,
		Progress: func(line string) {
			// The per-second traffic counts would drown the steps.
			if !trafficLine.MatchString(line) {
				say("  %s", line)
			}
		},
	}))
}
