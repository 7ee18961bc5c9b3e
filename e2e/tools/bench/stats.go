package bench

import (
	"math"
	"slices"
	"time"
)

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of xs, NaN
// for none. With fewer than 100 samples the 99th is the largest.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// maximum is the largest of xs, NaN for none.
func maximum(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return slices.Max(xs)
}

// mean is the average of xs, NaN for none.
func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// minimum is the smallest of xs, NaN for none.
func minimum(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return slices.Min(xs)
}

func millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// peakInWindow is the largest number of times that fall in any half-open
// window [t, t+w), for sorted times.
func peakInWindow(times []time.Time, w time.Duration) int {
	peak, lo := 0, 0
	for hi := range times {
		for !times[lo].Add(w).After(times[hi]) {
			lo++
		}
		peak = max(peak, hi-lo+1)
	}
	return peak
}
