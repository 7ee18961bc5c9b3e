package traffic

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The whole-hold chance of a false quiet, checked by simulation: ALB nodes
// sending Poisson arrivals at rates of their own, each stopping after a lag
// drawn from a straggler mixture, seen through the real Tracker sample by
// sample as sock_diag shows them (per-connection data-segment counts and
// millisecond last-data ages). A false quiet is a release after which a
// node still sends. The README's statement: each gap an address shows while
// it still sends ends in a false quiet with chance at most e^-k, so a hold's
// chance is at most e^-k times the gaps its addresses show once the watcher
// has answered. Beside the rule, the same holds are judged by the rules it
// replaced and by one that knows each node's true rate, which no rule
// judging by the pod's own traffic can beat at the same chance per gap.

// simConfig is one simulated population of holds.
type simConfig struct {
	holds int
	k     int
	// rate is the pod's requests per second, shares each node's part.
	rate   float64
	shares []float64
	// answer is when the watcher answers (the quiet rule is applied from
	// then on), sample the sampling interval, lbc the controller's lag
	// before the nodes' own.
	answer, sample, lbc time.Duration
	// min is the shortest quiet period (--quiet-period), for both rules.
	min time.Duration
	// slow is the share of lag draws that are slow; fast and slowBy shape
	// them: fast draws are uniform in fast, slow ones slowBy times that.
	slow   float64
	fast   [2]time.Duration
	slowBy float64
	seed   uint64
}

// simResult counts what the holds did.
type simResult struct {
	holds int
	// rule is the Tracker's rule.
	rule ruleResult
	// bound is the statement's bound summed over the holds: e^-k per gap
	// shown while sending. straggler is the same over the gaps a node
	// shows once every other node has sent its last: only then can the pod
	// be quiet everywhere else.
	bound, straggler float64
	// meanGaps is the rule before this one, k·S/n per address; knownRate
	// k of each node's true mean gaps, with the same chance per gap as the
	// rule but no estimate to pay for; podWide the first rule, one quiet
	// period for the pod, k mean gaps from its first 2 s.
	meanGaps, knownRate, podWide ruleResult
}

// ruleResult is what one release rule did with the holds.
type ruleResult struct {
	falseQuiets int
	// holdsS are the release times, seconds from the hold's start.
	holdsS []float64
}

func (r *ruleResult) add(released time.Duration, arr [][]time.Duration) {
	r.holdsS = append(r.holdsS, released.Seconds())
	if sendsAfter(arr, released) {
		r.falseQuiets++
	}
}

func (c simConfig) lag(r *rand.Rand) time.Duration {
	d := c.fast[0] + time.Duration(r.Float64()*float64(c.fast[1]-c.fast[0]))
	if r.Float64() < c.slow {
		d = time.Duration(float64(d) * c.slowBy)
	}
	return c.lbc + d
}

// arrivalsOf draws a Poisson process at rate from -10 s to stop.
func arrivalsOf(r *rand.Rand, rate float64, stop time.Duration) []time.Duration {
	var out []time.Duration
	for t := -10 * time.Second; ; {
		t += time.Duration(r.ExpFloat64() / rate * float64(time.Second))
		if t >= stop {
			return out
		}
		out = append(out, t)
	}
}

func simulate(c simConfig) simResult {
	r := rand.New(rand.NewPCG(c.seed, c.seed+1))
	res := simResult{holds: c.holds}
	p := Period{Gaps: c.k, Min: c.min, Max: 30 * time.Second}
	pod := netip.MustParseAddrPort("10.0.0.5:8080")
	for range c.holds {
		n := len(c.shares)
		arr := make([][]time.Duration, n)
		for i, s := range c.shares {
			arr[i] = arrivalsOf(r, c.rate*s, c.lag(r))
		}
		for i := range arr {
			from := c.answer
			for j, as := range arr {
				if j != i && len(as) > 0 {
					from = max(from, as[len(as)-1])
				}
			}
			res.bound += gapsFrom(arr[i], c.answer) * math.Exp(-float64(c.k))
			res.straggler += gapsFrom(arr[i], from) * math.Exp(-float64(c.k))
		}
		tr := NewTracker(Filter{PodIP: pod.Addr(), Ports: []uint16{pod.Port()}})
		released := time.Duration(-1)
		for now := time.Duration(0); released < 0; now += c.sample {
			socks := make([]Socket, n)
			for i := range c.shares {
				count, last := 0, time.Duration(-math.MaxInt64)
				for _, a := range arr[i] {
					if a <= now {
						count, last = count+1, a
					}
				}
				remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), 40000)
				info := &Info{LastDataRecv: (now - last).Truncate(time.Millisecond), BytesReceived: uint64(100 * count), Counters: true, DataSegsIn: uint32(count)}
				socks[i] = Socket{Local: pod, Remote: remote, State: stateEstablished, Info: info}
			}
			tr.Observe(t0.Add(now), socks)
			if now >= c.answer {
				if quiet, _ := tr.Quiet(Hints{}, p, t0.Add(now)); quiet {
					released = now
				}
			}
		}
		res.rule.add(released, arr)
		res.meanGaps.add(releaseBy(c, arr, func(_ int, n float64, span time.Duration) time.Duration {
			return time.Duration(float64(c.k) * float64(span) / n)
		}), arr)
		res.knownRate.add(releaseBy(c, arr, func(i int, _ float64, _ time.Duration) time.Duration {
			return time.Duration(float64(c.k) / (c.rate * c.shares[i]) * float64(time.Second))
		}), arr)
		res.podWide.add(oldRuleReleases(c, arr), arr)
	}
	return res
}

// releaseBy is when a rule that sizes each node's quiet period by
// period(node, gaps, their length) releases the pod: the Tracker's
// evidence and silence (the latest arrival before the hold as one gap,
// every arrival since, silence from the first sample on), judged on the
// same samples from the watcher's answer on, within the same bounds.
func releaseBy(c simConfig, arr [][]time.Duration, period func(i int, n float64, span time.Duration) time.Duration) time.Duration {
	for now := c.answer; ; now += c.sample {
		quiet := true
		for i, as := range arr {
			n, last, before := 0, time.Duration(0), time.Duration(1)
			for _, a := range as {
				switch {
				case a > now:
				case a < 0:
					before = a
				default:
					n, last = n+1, a
				}
			}
			span := last
			if before <= 0 {
				n, span = n+1, span-before
			}
			q := 30 * time.Second
			if n > 0 {
				q = min(max(period(i, float64(n), span), c.min), q)
			}
			quiet = quiet && now-last >= q
		}
		if quiet {
			return now
		}
	}
}

// oldRuleReleases is when the replaced rule released: one quiet period
// for the pod, k mean gaps from the arrivals of its first 2 s and each
// node's latest data before the hold, once the pod's traffic as a whole
// had been silent that long.
func oldRuleReleases(c simConfig, arr [][]time.Duration) time.Duration {
	const window = 2 * time.Second
	n, ages, m := 0, time.Duration(0), 0
	for _, as := range arr {
		var latestBefore time.Duration = 1
		for _, a := range as {
			if a < 0 {
				latestBefore = a
			} else if a <= window {
				n++
			}
		}
		if latestBefore <= 0 {
			ages, m = ages+(-latestBefore), m+1
		}
	}
	gap := (window + ages/time.Duration(max(m, 1))) / time.Duration(max(n+m, 1))
	q := min(max(time.Duration(c.k)*gap, c.min), 30*time.Second)
	for now := max(c.answer, window); ; now += c.sample {
		last := time.Duration(0)
		for _, as := range arr {
			for _, a := range as {
				if a <= now {
					last = max(last, a)
				}
			}
		}
		if now-last >= q {
			return now
		}
	}
}

// gapsFrom counts the gaps of arrivals as from t on: the gap in progress
// at t and the one after each arrival.
func gapsFrom(as []time.Duration, t time.Duration) float64 {
	n := 1
	for _, a := range as {
		if a >= t {
			n++
		}
	}
	return float64(n)
}

func sendsAfter(arr [][]time.Duration, t time.Duration) bool {
	for _, as := range arr {
		if k := len(as); k > 0 && as[k-1] > t {
			return true
		}
	}
	return false
}

// stragglers is the lag model of issue 21 as the simulation draws it: three
// nodes with unequal shares (clients' kept-alive connections spread 2:1:1),
// most lags 1-3 s after the controller's 0.75 s, one draw in five four
// times slower; the shortest quiet period is minQuiet.
func stragglers(holds, k int, rate float64, minQuiet time.Duration, seed uint64) simConfig {
	return simConfig{
		holds: holds, k: k, rate: rate, shares: []float64{0.5, 0.25, 0.25}, min: minQuiet,
		answer: 1500 * time.Millisecond, sample: 200 * time.Millisecond, lbc: 750 * time.Millisecond,
		slow: 0.2, fast: [2]time.Duration{time.Second, 3 * time.Second}, slowBy: 4, seed: seed,
	}
}

// TestWholeHoldFalseQuietChance checks the README's statement with a k low
// enough that false quiets happen often, and the shortest quiet period one
// sample, so that it constrains nothing: the count observed stays within
// the bound (a Poisson count, with three standard deviations of slack);
// the rules it replaced lose more, and a rule that knew each node's rate
// would not hold longer.
func TestWholeHoldFalseQuietChance(t *testing.T) {
	for _, rate := range []float64{4, 40} {
		res := simulate(stragglers(2000, 5, rate, 200*time.Millisecond, 21))
		logSim(t, rate, 5, res)
		if limit := res.bound + 3*math.Sqrt(res.bound); float64(res.rule.falseQuiets) > limit {
			t.Errorf("rate %g/s: %d false quiets, above the bound %.1f (+3 sd: %.1f)", rate, res.rule.falseQuiets, res.bound, limit)
		}
		for name, r := range map[string]ruleResult{"k·S/n": res.meanGaps, "pod-wide": res.podWide} {
			if r.falseQuiets <= res.rule.falseQuiets {
				t.Errorf("rate %g/s: %d false quiets, the replaced rule %s %d", rate, res.rule.falseQuiets, name, r.falseQuiets)
			}
		}
		if known, rule := median(res.knownRate.holdsS), median(res.rule.holdsS); known > rule {
			t.Errorf("rate %g/s: median hold %.2fs, knowing the rates %.2fs", rate, rule, known)
		}
	}
}

// TestWholeHoldFalseQuietChanceLong runs the README's figures at k = 10
// and the chart's k = 15, with the default 1 s shortest quiet period, beside
// the rules this replaced and the known-rate floor: ALBDRAIN_QUIET_SIM=<holds>
// (slow: 100,000 holds take minutes).
func TestWholeHoldFalseQuietChanceLong(t *testing.T) {
	holds, _ := strconv.Atoi(os.Getenv("ALBDRAIN_QUIET_SIM"))
	if holds <= 0 {
		t.Skip("ALBDRAIN_QUIET_SIM=<holds> runs it")
	}
	for _, k := range []int{10, 15} {
		for _, rate := range []float64{4, 24, 40} {
			res := simulate(stragglers(holds, k, rate, time.Second, uint64(k)))
			logSim(t, rate, k, res)
			if limit := res.bound + 3*math.Sqrt(res.bound); float64(res.rule.falseQuiets) > limit {
				t.Errorf("rate %g/s, k=%d: %d false quiets, above the bound %.1f", rate, k, res.rule.falseQuiets, res.bound)
			}
		}
	}
}

func logSim(t *testing.T, rate float64, k int, res simResult) {
	t.Helper()
	per := func(n int) float64 { return float64(n) / float64(res.holds) }
	t.Logf("rate %g/s, k=%d, %d holds: rule %d false quiets (%.2g per hold), median hold %.2fs; bound %.3g per hold, for stragglers' gaps %.3g",
		rate, k, res.holds, res.rule.falseQuiets, per(res.rule.falseQuiets), median(res.rule.holdsS), res.bound/float64(res.holds), res.straggler/float64(res.holds))
	for _, r := range []struct {
		name string
		r    ruleResult
	}{{"k·S/n per address", res.meanGaps}, {"known rates", res.knownRate}, {"pod-wide", res.podWide}} {
		t.Logf("  %s: %d false quiets (%.2g per hold), median hold %.2fs", r.name, r.r.falseQuiets, per(r.r.falseQuiets), median(r.r.holdsS))
	}
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}
