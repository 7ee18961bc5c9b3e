package albemu

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// LagModel is the distribution each ALB node's propagation lag is drawn
// from, once per node for every registration and deregistration. The zero
// value is a constant lag of zero. Its text form, which ParseLag reads and
// String writes, is one of:
//
//	constant:2s                        (or just "2s")
//	uniform:min=1s,max=5s
//	lognormal:median=2s,p99=10s        (optionally ,max=20s: draws above are clamped)
//	samples:1s,1.5s,2s,9s              (each draw picks one at random)
//	straggler:min=1s,max=3s,slow=0.2,by=4
//
// A straggler draw is uniform between min and max, and a share slow of the
// draws is by times longer: most of an ALB's nodes apply a change within a
// few seconds, and now and then one lags several times as long (see
// straggler.go).
//
// In the field, lags vary per rollout and per node, with a heavy tail:
// load balancer controller users report 15-60 s for ALBs. A lognormal
// given its median and p99 is a simple model of that.
type LagModel struct {
	kind    string          // "", "constant", "uniform", "lognormal", "samples", "straggler"
	a, b    time.Duration   // constant: a; uniform and straggler: a..b; lognormal: median a, p99 b
	max     time.Duration   // lognormal's clamp; zero for none
	samples []time.Duration // sorted
	// slow is a straggler's share of slow draws, by how much slower they are.
	slow, by float64
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// ConstantLag is a lag of d every time.
func ConstantLag(d time.Duration) LagModel { return LagModel{kind: "constant", a: max(d, 0)} }

// ParseLag reads a lag model in the text form LagModel documents.
func ParseLag(s string) (LagModel, error) {
	kind, args, found := strings.Cut(strings.TrimSpace(s), ":")
	if !found {
		if _, err := time.ParseDuration(kind); err != nil {
			return LagModel{}, fmt.Errorf("lag %q: want a duration or kind:args (constant, uniform, lognormal, samples, straggler)", s)
		}
		kind, args = "constant", kind
	}
	m, err := parseLagArgs(kind, args)
	if err != nil {
		return LagModel{}, fmt.Errorf("lag %q: %w", s, err)
	}
	return m, nil
}

func parseLagArgs(kind, args string) (LagModel, error) {
	switch kind {
	case "constant":
		d, err := nonNegative(args)
		return LagModel{kind: kind, a: d}, err
	case "samples":
		m := LagModel{kind: kind}
		for part := range strings.SplitSeq(args, ",") {
			d, err := nonNegative(part)
			if err != nil {
				return LagModel{}, err
			}
			m.samples = append(m.samples, d)
		}
		slices.Sort(m.samples)
		return m, nil
	case "straggler":
		return parseStraggler(args)
	case "uniform", "lognormal":
	default:
		return LagModel{}, fmt.Errorf("unknown kind %q: want constant, uniform, lognormal, samples or straggler", kind)
	}
	named := map[string]time.Duration{}
	for part := range strings.SplitSeq(args, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return LagModel{}, fmt.Errorf("%q: want name=duration", part)
		}
		d, err := nonNegative(v)
		if err != nil {
			return LagModel{}, err
		}
		named[strings.TrimSpace(k)] = d
	}
	want := map[string][]string{"uniform": {"min", "max"}, "lognormal": {"median", "p99"}}[kind]
	for _, k := range want {
		if _, ok := named[k]; !ok {
			return LagModel{}, fmt.Errorf("%s needs %s=", kind, strings.Join(want, "=, "))
		}
	}
	m := LagModel{kind: kind, a: named[want[0]], b: named[want[1]]}
	if kind == "lognormal" {
		m.max = named["max"]
		delete(named, "max")
	}
	switch {
	case len(named) != 2:
		return LagModel{}, fmt.Errorf("%s takes only %s (and lognormal max)", kind, strings.Join(want, ", "))
	case kind == "uniform" && m.a > m.b:
		return LagModel{}, errors.New("uniform: min above max")
	case kind == "lognormal" && (m.a <= 0 || m.b <= m.a):
		return LagModel{}, errors.New("lognormal: want 0 < median < p99")
	case kind == "lognormal" && m.max != 0 && m.max < m.a:
		return LagModel{}, errors.New("lognormal: max below the median")
	}
	return m, nil
}

func nonNegative(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a non-negative duration", s)
	}
	return d, nil
}

// String is the model's text form, which ParseLag reads back.
func (m LagModel) String() string {
	switch m.kind {
	case "uniform":
		return fmt.Sprintf("uniform:min=%s,max=%s", m.a, m.b)
	case "lognormal":
		s := fmt.Sprintf("lognormal:median=%s,p99=%s", m.a, m.b)
		if m.max > 0 {
			s += ",max=" + m.max.String()
		}
		return s
	case "samples":
		parts := make([]string, len(m.samples))
		for i, d := range m.samples {
			parts[i] = d.String()
		}
		return "samples:" + strings.Join(parts, ",")
	case "straggler":
		return fmt.Sprintf("straggler:min=%s,max=%s,slow=%g,by=%g", m.a, m.b, m.slow, m.by)
	}
	return "constant:" + m.a.String()
}

// Set parses s into m, so a LagModel can be a command-line flag.
func (m *LagModel) Set(s string) error {
	parsed, err := ParseLag(s)
	if err != nil {
		return err
	}
	*m = parsed
	return nil
}

// sigma is the lognormal's shape, from its median and p99.
func (m LagModel) sigma() float64 {
	return math.Log(float64(m.b)/float64(m.a)) / z99
}

// Draw takes one lag from the model.
func (m LagModel) Draw(r *rand.Rand) time.Duration {
	switch m.kind {
	case "uniform":
		return m.a + time.Duration(r.Int64N(int64(m.b-m.a)+1))
	case "lognormal":
		return m.clamp(time.Duration(float64(m.a) * math.Exp(m.sigma()*r.NormFloat64())))
	case "samples":
		return m.samples[r.IntN(len(m.samples))]
	case "straggler":
		return m.drawStraggler(r)
	}
	return m.a
}

func (m LagModel) clamp(d time.Duration) time.Duration {
	if m.max > 0 {
		return min(d, m.max)
	}
	return d
}

// Quantile is the model's p-quantile (0 < p < 1): the lag that a share p of
// draws do not exceed.
func (m LagModel) Quantile(p float64) time.Duration {
	switch m.kind {
	case "uniform":
		return m.a + time.Duration(p*float64(m.b-m.a))
	case "lognormal":
		z := math.Sqrt2 * math.Erfinv(2*p-1)
		return m.clamp(time.Duration(float64(m.a) * math.Exp(m.sigma()*z)))
	case "samples":
		i := int(math.Ceil(p*float64(len(m.samples)))) - 1
		return m.samples[min(max(i, 0), len(m.samples)-1)]
	case "straggler":
		return m.stragglerQuantile(p)
	}
	return m.a
}

// QuantileOfMax is the p-quantile of the largest of n independent draws:
// a target's true stop waits for the slowest of n nodes.
func (m LagModel) QuantileOfMax(p float64, n int) time.Duration {
	return m.Quantile(math.Pow(p, 1/float64(max(n, 1))))
}

// newLagRand is the emulator's source of lags for a seed.
func newLagRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Draws are the first n lags an emulator seeded with seed draws from m, in
// order: for each target of each RegisterTargets or DeregisterTargets call,
// one per node. Tests use it to predict the emulator's lags.
func (m LagModel) Draws(seed uint64, n int) []time.Duration {
	r := newLagRand(seed)
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = m.Draw(r)
	}
	return out
}
