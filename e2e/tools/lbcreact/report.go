package lbcreact

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

// Summary is the spread of one series of reaction times.
type Summary struct {
	N                     int
	Min, Median, P90, Max time.Duration
}

// Summarize returns the nearest-rank percentiles of ds.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Sorted(slices.Values(ds))
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Summary{N: len(s), Min: s[0], Median: rank(0.5), P90: rank(0.9), Max: s[len(s)-1]}
}

// Write prints one line per controller and series.
func Write(out io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "controller\tseries\tn\tmin ms\tmedian ms\tp90 ms\tmax ms\t")
	for _, r := range results {
		for _, s := range []struct {
			name string
			ds   []time.Duration
		}{{"deregister", r.Deregister}, {"register", r.Register}, {"gate", r.Gate}, {"slice write", r.SliceWrite}} {
			m := Summarize(s.ds)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t\n", r.Controller, s.name, m.N, ms(m.Min), ms(m.Median), ms(m.P90), ms(m.Max))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		fmt.Fprintf(out, "%s: User-Agent %q, AWS calls %v\n", r.Controller, r.UserAgent, r.Calls)
		fmt.Fprintf(out, "%s: gate conditions as first written %v\n", r.Controller, r.FirstGates)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
