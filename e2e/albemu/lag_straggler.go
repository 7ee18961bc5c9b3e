package albemu

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// parseStraggler reads a straggler model's arguments:
// min=<duration>,max=<duration>,slow=<share>,by=<factor>.
func parseStraggler(args string) (LagModel, error) {
	m := LagModel{kind: "straggler"}
	seen := map[string]bool{}
	for part := range strings.SplitSeq(args, ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || seen[k] {
			return LagModel{}, fmt.Errorf("%q: want min=, max=, slow= and by=, each once", part)
		}
		seen[k] = true
		var err error
		switch k {
		case "min":
			m.a, err = nonNegative(v)
		case "max":
			m.b, err = nonNegative(v)
		case "slow":
			m.slow, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
		case "by":
			m.by, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
		default:
			return LagModel{}, fmt.Errorf("straggler takes min, max, slow and by, not %q", k)
		}
		if err != nil {
			return LagModel{}, fmt.Errorf("straggler %s: %w", k, err)
		}
	}
	switch {
	case len(seen) != 4:
		return LagModel{}, errors.New("straggler needs min=, max=, slow= and by=")
	case m.a > m.b:
		return LagModel{}, errors.New("straggler: min above max")
	case !(m.slow >= 0 && m.slow <= 1):
		return LagModel{}, errors.New("straggler: slow is a share, from 0 to 1")
	case !(m.by >= 1 && m.by <= 100):
		return LagModel{}, errors.New("straggler: by is a factor from 1 to 100")
	}
	return m, nil
}

// drawStraggler draws a uniform lag, made by times longer for a share slow
// of the draws. It always takes two numbers from r, so a seed's sequence
// does not depend on which draws were slow.
func (m LagModel) drawStraggler(r *rand.Rand) time.Duration {
	d := m.a + time.Duration(r.Int64N(int64(m.b-m.a)+1))
	if r.Float64() < m.slow {
		d = time.Duration(float64(d) * m.by)
	}
	return d
}

// stragglerCDF is the share of draws at most d.
func (m LagModel) stragglerCDF(d time.Duration) float64 {
	uniform := func(lo, hi float64) float64 {
		x := float64(d)
		switch {
		case x < lo:
			return 0
		case x >= hi:
			return 1
		}
		return (x - lo) / (hi - lo)
	}
	a, b := float64(m.a), float64(m.b)
	return (1-m.slow)*uniform(a, b) + m.slow*uniform(a*m.by, b*m.by)
}

// stragglerQuantile inverts stragglerCDF by bisection, to the nanosecond.
func (m LagModel) stragglerQuantile(p float64) time.Duration {
	lo, hi := m.a, time.Duration(float64(m.b)*m.by)+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if m.stragglerCDF(mid) >= p {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
