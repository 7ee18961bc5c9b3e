package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCPUOfStat(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
	}{
		{"plain", "1234 (albdrain) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0", 3},
		{"spaces and parens in the name", "99 (a) b (c) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0", 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cpuOfStat(tc.stat)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("cpuOfStat (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := cpuOfStat("1 (x) S 1"); err == nil {
		t.Error("a short line: no error")
	}
}

func TestStatusKiB(t *testing.T) {
	status := "Name:\talbdrain\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n"
	got, err := statusKiB(status, "VmHWM")
	if err != nil || got != 51200 {
		t.Errorf("VmHWM = %v, %v; want 51200", got, err)
	}
	if _, err := statusKiB(status, "VmSwap"); err == nil {
		t.Error("a missing key: no error")
	}
}

func TestIntervalLoad(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	interval := 5 * time.Second
	for _, tc := range []struct {
		name          string
		calls         []time.Time
		waits         []waitSpan
		end           time.Time
		wantCalls     []int
		wantGroups    []int
		wantCallRatio float64
	}{
		{
			name: "one call per group with holds per interval",
			// Group 0 waits through intervals 0 and 1, group 1 through 1 only.
			calls:      []time.Time{at(1), at(6), at(7), at(12)},
			waits:      []waitSpan{{Group: 0, From: at(0), To: at(9)}, {Group: 1, From: at(5.5), To: at(8)}, {Group: 0, From: at(2), To: at(3)}},
			end:        at(15),
			wantCalls:  []int{1, 2, 1},
			wantGroups: []int{1, 2, 0},
			// The call in interval 2 had no hold waiting: not counted.
			wantCallRatio: 1,
		},
		{
			name:          "three replicas polling one group",
			calls:         []time.Time{at(1), at(1.1), at(1.2), at(-1), at(20)},
			waits:         []waitSpan{{Group: 3, From: at(0), To: at(4)}},
			end:           at(5),
			wantCalls:     []int{3},
			wantGroups:    []int{1},
			wantCallRatio: 3,
		},
		{
			name:          "a wait ending on an interval's start stays out of it",
			calls:         []time.Time{at(2)},
			waits:         []waitSpan{{Group: 0, From: at(1), To: at(5)}},
			end:           at(10),
			wantCalls:     []int{1, 0},
			wantGroups:    []int{1, 0},
			wantCallRatio: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, groups := intervalLoad(tc.calls, tc.waits, start, tc.end, interval)
			if diff := cmp.Diff(tc.wantCalls, calls); diff != "" {
				t.Errorf("calls per interval (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantGroups, groups); diff != "" {
				t.Errorf("groups per interval (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCallRatio, callRatio(calls, groups)); diff != "" {
				t.Errorf("callRatio (-want +got):\n%s", diff)
			}
		})
	}
	if r := callRatio(nil, nil); r != 0 {
		t.Errorf("callRatio of nothing = %v, want 0", r)
	}
}

func TestDrawCurves(t *testing.T) {
	svg := string(drawCurves([]float64{10, 100, 500}, []curvePanel{{title: "hold <s>", names: [2]string{"p50", ""}, series: [2][]float64{{1, 2, 3}}}}))
	for _, want := range []string{"<svg ", "hold &lt;s&gt;", "p50 at 500 pods: 3", "</svg>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}
