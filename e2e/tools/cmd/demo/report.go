package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/scenario"
)

// figures are one run's numbers, in the JSON shape DEMO_JSON documents.
type figures struct {
	Name            string  `json:"name"`
	Requests        int     `json:"requests"`
	Errors          int     `json:"errors"`
	MaxHoldSeconds  float64 `json:"max_hold_seconds"`
	MeanHoldSeconds float64 `json:"mean_hold_seconds"`
	// MaxTrueStopSeconds is the longest time from a pod's preStop start
	// (or deletion, without one) to its true stop: when the last ALB node
	// stopped routing new requests to it.
	MaxTrueStopSeconds float64 `json:"max_true_stop_seconds"`
	// ReleasedEarly counts pods released (stopped serving) before their
	// true stop; MeanOverHoldSeconds is the mean of release minus true stop.
	ReleasedEarly       int     `json:"released_early"`
	MeanOverHoldSeconds float64 `json:"mean_over_hold_seconds"`
	ELBv2Calls          int     `json:"elbv2_calls"`

	byStatus      map[int]int
	albdrainCalls int
}

func summarize(results []*scenario.Result) []figures {
	out := make([]figures, len(results))
	for i, r := range results {
		f := figures{
			Name:          string(r.Spec.Protection),
			Requests:      r.Summary.Requests,
			Errors:        r.Summary.Errors,
			ELBv2Calls:    len(r.Calls),
			byStatus:      r.Summary.ByStatus,
			albdrainCalls: len(r.Calls) - r.LBCCalls(),
		}
		var sum, overSum float64
		for _, t := range r.Terminations {
			h := t.Hold()
			sum += h.Seconds()
			f.MaxHoldSeconds = max(f.MaxHoldSeconds, h.Seconds())
			stop, ok := trueStop(r, t.Name)
			if !ok {
				continue
			}
			start, release := holdSpan(t)
			f.MaxTrueStopSeconds = max(f.MaxTrueStopSeconds, stop.Sub(start).Seconds())
			overSum += release.Sub(stop).Seconds()
			if release.Before(stop) {
				f.ReleasedEarly++
			}
		}
		if n := len(r.Terminations); n > 0 {
			f.MeanHoldSeconds, f.MeanOverHoldSeconds = sum/float64(n), overSum/float64(n)
		}
		f.MaxHoldSeconds, f.MeanHoldSeconds = millis(f.MaxHoldSeconds), millis(f.MeanHoldSeconds)
		f.MaxTrueStopSeconds, f.MeanOverHoldSeconds = millis(f.MaxTrueStopSeconds), millis(f.MeanOverHoldSeconds)
		out[i] = f
	}
	return out
}

// holdSpan is when the pod's hold began (its deletion, without a preStop
// hook) and when it was released to stop serving.
func holdSpan(t kubelet.Termination) (start, release time.Time) {
	start, release = t.Noticed, t.Noticed
	for _, h := range t.Hooks {
		start, release = h.Start, h.End
	}
	return start, release
}

func millis(s float64) float64 { return math.Round(s*1000) / 1000 }

func writeTable(w io.Writer, runs []figures) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\trequests\tfailed\tby status\tmean hold\tmax hold\tmax true stop\treleased early\tmean over-hold\tELBv2 calls\tof which albdrain\t")
	for _, f := range runs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.1fs\t%.1fs\t%.1fs\t%d\t%+.1fs\t%d\t%d\t\n",
			f.Name, f.Requests, f.Errors, statuses(f.byStatus), f.MeanHoldSeconds, f.MaxHoldSeconds,
			f.MaxTrueStopSeconds, f.ReleasedEarly, f.MeanOverHoldSeconds, f.ELBv2Calls, f.albdrainCalls)
	}
	tw.Flush()
	fmt.Fprintln(w, `
"by status": 502 is the ALB's answer when the pod refused or dropped the connection;
0 means the client got no complete response. "hold" is how long each terminating pod
kept serving in its preStop hook before it was told to stop; its "true stop" is when the
last ALB node stopped sending it new requests (the emulator's ground truth), from the start
of its preStop hook (or its deletion, without one). "released early": pods that stopped
serving before their true stop; "over-hold": release minus true stop.`)
}

// statuses renders failure counts as "502×312 504×2".
func statuses(by map[int]int) string {
	if len(by) == 0 {
		return "-"
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%d×%d", code, by[code]))
	}
	return strings.Join(parts, " ")
}

func writeJSON(path string, runs []figures) error {
	b, err := json.MarshalIndent(struct {
		Runs []figures `json:"runs"`
	}{runs}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
