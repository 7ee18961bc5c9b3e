package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/e2e/tools/bench"
)

// rotationPollInterval is the chart's --poll-interval, which the
// managers keep.
const rotationPollInterval = 5 * time.Second

// measureRotation runs the rotation and its curves, writes the curves'
// SVG, and measures admission during the full-size rotation's drain: the
// handler benchmark, in a process and apiserver of its own, shares the
// machine with the drain's managers, helpers and replacement pods.
func measureRotation(ctx context.Context, ws *cluster.Workspace, o options, manager string, add func(*bench.Section, error) error) error {
	ws.Say("rotation: a node drain of %d pods behind 3 albdrain replicas", o.rotation.pods)
	scales := []int{10, 100, o.rotation.pods}
	var handler *bench.Section
	var during func(context.Context) error
	if !slices.Contains(o.only, "handler") {
		during = func(ctx context.Context) (err error) {
			ws.Say("  admission handler during the drain: go test -bench BenchmarkAdmission")
			handler, err = bench.MeasureHandler(ctx, o.goCmd, o.benchtime)
			return err
		}
	}
	s, curve, err := bench.MeasureRotation(ctx, bench.RotationOptions{
		Pods: o.rotation.pods, TargetGroups: 50, Nodes: 3, Spread: o.rotation.spread,
		Lag: mustLag(cluster.FieldLag), Seed: o.holds.seed,
		DeregistrationDelay: 20 * time.Second, LBCLag: fakelbc.MeasuredReal.Median,
		Replicas: 3, Manager: manager, Dir: ws.Dir, Rate: o.rotation.rate,
		PollInterval: rotationPollInterval, Scales: scales, DuringDrain: during,
		Progress: func(f string, args ...any) { ws.Say("  "+f, args...) },
	})
	if err := add(s, err); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.rotation.svg), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.rotation.svg, bench.ScalingSVG(curve, rotationPollInterval), 0o644); err != nil {
		return err
	}
	ws.Say("rotation: scaling curves in %s", o.rotation.svg)
	if handler == nil {
		return nil
	}
	handler.Notes = append(handler.Notes, fmt.Sprintf("measured while the rotation drained %d held pods and created their %d replacements", o.rotation.pods, o.rotation.pods))
	return add(handler, nil)
}
