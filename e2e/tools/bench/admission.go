package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// The Go benchmarks, run with `go test -bench`, which is how allocations get
// counted: the admission benchmark is in the harness's module (it needs a
// real apiserver), run from that module's directory, e2e/ under the
// repository root where the bench runs; the poll benchmark needs the
// poller's internals and is in albdrain's own module.
const (
	harnessDir           = "e2e"
	handlerBenchmarkPkg  = "./integration"
	handlerBenchmarkName = "BenchmarkAdmission"
	pollBenchmarkPkg     = "github.com/albdrain/albdrain/drain/watcher/elbv2"
	pollBenchmarkName    = "BenchmarkPollRound"
)

// HandlerTargetMicros is the bound on one review's p99.
const HandlerTargetMicros = 1000

// HandlerAllocTarget is the bound on allocations per review.
const HandlerAllocTarget = 500

// MeasureHandler runs BenchmarkAdmission with the go command goCmd and
// reports its figures: one review through the real handler over a cache of
// 1,000 Services, 200 Ingresses and 200 TargetGroupBindings, against the
// same review in an empty namespace.
func MeasureHandler(ctx context.Context, goCmd string, benchtime string) (*Section, error) {
	m, err := runBenchmark(ctx, goCmd, harnessDir, handlerBenchmarkPkg, handlerBenchmarkName, benchtime,
		"p99-us", "baseline-p99-us", "own-p99-us", "own-allocs", "baseline-allocs")
	if err != nil {
		return nil, err
	}
	s := &Section{Name: "webhook", Notes: []string{
		"handler: `go test -bench " + handlerBenchmarkName + " -benchmem`, one review through the real handler over a real informer cache",
		"with 1,000 Services, 200 Ingresses and 200 TargetGroupBindings in the pod's namespace; baselines: the same review in an empty namespace",
		"(nothing matches, nothing injected) and in a namespace holding only the pod's own Service, binding and Ingress (the same mutation)",
	}}
	s.Add("handler_p99_us", m["p99-us"])
	s.Add("handler_baseline_p99_us", m["baseline-p99-us"])
	s.Add("handler_mean_us", m["ns/op"]/1000)
	s.Add("handler_bytes_per_op", m["B/op"])
	s.Add("handler_allocs_per_op", m["allocs/op"])
	s.Add("handler_own_p99_us", m["own-p99-us"])
	s.Add("handler_own_allocs_per_op", m["own-allocs"])
	s.Add("handler_baseline_allocs_per_op", m["baseline-allocs"])
	// The keys: allocations per review, and the crowded review's
	// p99 against the same mutation with only the pod's own objects.
	s.Add("allocs_per_review", m["allocs/op"])
	s.Add("handler_p99_ratio_vs_same_mutation", m["p99-us"]/m["own-p99-us"])
	s.Compare(Comparison{
		What: "admission handler p99 (µs)", Value: m["p99-us"],
		Baseline: m["baseline-p99-us"], BaselineWhat: "empty namespace",
		Target: fmt.Sprintf("< %d µs", HandlerTargetMicros), Met: m["p99-us"] < HandlerTargetMicros,
	})
	s.Compare(Comparison{
		What: "admission p99 in a crowded namespace (µs)", Value: m["p99-us"],
		Baseline: m["own-p99-us"], BaselineWhat: "only the pod's own matches",
		Target: "within 1.2x", Met: m["p99-us"] <= 1.2*m["own-p99-us"],
	})
	s.Compare(Comparison{
		What: "allocations per review, crowded namespace", Value: m["allocs/op"],
		Baseline: m["own-allocs"], BaselineWhat: "only the pod's own matches",
		Target: fmt.Sprintf("< %d", HandlerAllocTarget), Met: m["allocs/op"] < HandlerAllocTarget,
	})
	return s, nil
}

// runBenchmark runs one Go benchmark of pkg, from the directory dir, with
// allocations counted and returns its figures by unit; the units listed must
// be among them.
func runBenchmark(ctx context.Context, goCmd, dir, pkg, name, benchtime string, units ...string) (map[string]float64, error) {
	goBin, err := exec.LookPath(goCmd)
	if err != nil {
		return nil, fmt.Errorf("the Go benchmarks need the go command: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "test", "-run", "^$", "-bench", "^"+name+"$",
		"-benchmem", "-count", "1", "-benchtime", benchtime, pkg)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test -bench %s: %w\n%s%s", name, err, stdout.Bytes(), stderr.Bytes())
	}
	return parseBenchmark(stdout.String(), name, units...)
}

// parseBenchmark reads the metrics of one benchmark's result, e.g.
// "BenchmarkX-2  100  118208 ns/op  552.0 p99-us  50136 B/op", by unit.
// What the benchmark prints on stderr, which go test merges in, can split
// the name from the figures, so the result is the line that has "ns/op",
// read from the iteration count before it.
func parseBenchmark(out, name string, units ...string) (map[string]float64, error) {
	if !strings.Contains(out, name) {
		return nil, fmt.Errorf("no result for %s in:\n%s", name, out)
	}
	for line := range strings.Lines(out) {
		fields := strings.Fields(line)
		at := slices.Index(fields, "ns/op")
		if at < 2 {
			continue
		}
		m := map[string]float64{}
		for i := at - 1; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: %w", strings.TrimSpace(line), err)
			}
			m[fields[i+1]] = v
		}
		for _, unit := range append([]string{"ns/op", "B/op", "allocs/op"}, units...) {
			if _, ok := m[unit]; !ok {
				return nil, fmt.Errorf("benchmark line %q has no %s", strings.TrimSpace(line), unit)
			}
		}
		return m, nil
	}
	return nil, fmt.Errorf("no result line for %s in:\n%s", name, out)
}

// MeasurePollRound runs BenchmarkPollRound: the watcher's work in one poll
// interval with 1,000 held pods across 50 target groups.
func MeasurePollRound(ctx context.Context, goCmd string, benchtime string) (*Section, error) {
	m, err := runBenchmark(ctx, goCmd, "", pollBenchmarkPkg, pollBenchmarkName, benchtime, "calls/round")
	if err != nil {
		return nil, err
	}
	s := &Section{Name: "elbv2", Notes: []string{
		"poll round: `go test -bench " + pollBenchmarkName + " -benchmem`, one poll interval's work for 1,000 held pods across 50",
		"target groups against an ELBv2 stand-in that answers at once: the requests built, answers handed to each hold",
	}}
	s.Add("poll_round_us", m["ns/op"]/1000)
	s.Add("poll_round_allocs", m["allocs/op"])
	s.Add("poll_round_calls", m["calls/round"])
	return s, nil
}
