package bench

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	xs := make([]float64, 200)
	for i := range xs {
		xs[i] = float64(200 - i) // 1..200, unsorted
	}
	for _, c := range []struct{ p, want float64 }{{50, 100}, {99, 198}, {100, 200}, {0.1, 1}} {
		if got := percentile(xs, c.p); got != c.want {
			t.Errorf("percentile(1..200, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile([]float64{3, 1, 2}, 99); got != 3 {
		t.Errorf("p99 of three samples = %v, want the largest", got)
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of nothing is not NaN")
	}
}

func TestPeakInWindow(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	for _, c := range []struct {
		times []time.Time
		want  int
	}{
		{nil, 0},
		{at(0), 1},
		// 1000 is outside [0, 1000) but inside [1, 1001).
		{at(0, 1, 999, 1000), 3},
		{at(0, 1000, 2000, 3000), 1},
		{at(0, 100, 200, 5000, 5001, 5002, 5003), 4},
	} {
		if got := peakInWindow(c.times, time.Second); got != c.want {
			t.Errorf("peakInWindow(%v) = %d, want %d", c.times, got, c.want)
		}
	}
}
