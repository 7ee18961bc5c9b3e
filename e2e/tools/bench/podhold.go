package bench

import (
	"fmt"
	"regexp"
	"time"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/scenario"
)

// podHold is one pod's termination measured against the emulator's ground
// truth, on the ALB's clock.
type podHold struct {
	name string
	// hold is how long the preStop hook kept the pod serving; zero
	// without one.
	hold time.Duration
	// trueStop is from the preStop's start (or the deletion's notice,
	// without one) to when the last ALB node stopped routing new requests
	// to the pod: the shortest fixed sleep that would have served it.
	trueStop time.Duration
	// failed counts the requests the ALB routed to the pod that failed.
	failed int
	// rate is the requests per second the ALB routed to the pod in the
	// rateWindow before its hold began: its own traffic, which a rollout's
	// surge pods and stragglers make lower than the run's nominal rate.
	rate float64
	// ended is how the helper said its hold ended (outcome and quiet
	// period), empty without the helper.
	ended string
	// quietPeriod is the quiet period the helper sized from what it saw;
	// zero without one.
	quietPeriod time.Duration
}

// rateWindow is how far back from its hold a pod's own traffic is counted.
const rateWindow = 5 * time.Second

// helperEnd finds the outcome and quiet period in the helper's "hold ended"
// log line.
var helperEnd = regexp.MustCompile(`msg="hold ended" outcome=(\S+) quiet=\S+ quietPeriod=(\S+)`)

// helperSources is what the helper's "hold ended" line says of each
// load-balancer address: its gaps, silence and quiet period.
var helperSources = regexp.MustCompile(`msg="hold ended" .* sources="([^"]*)"`)

// overHold is release minus true stop: how long the pod was held after it
// became safe to let go, negative when released while still routed.
func (p podHold) overHold() time.Duration { return p.hold - p.trueStop }

func (p podHold) String() string {
	return fmt.Sprintf("%-28s hold %6.2fs  true stop %6.2fs  over-hold %+6.2fs  failed %d  %5.1f req/s%s",
		p.name, p.hold.Seconds(), p.trueStop.Seconds(), p.overHold().Seconds(), p.failed, p.rate, p.ended)
}

// podHoldOf measures one termination of a run under protection: a held pod
// must have run its hook to completion, and every node must have stopped
// routing to its target.
func podHoldOf(term kubelet.Termination, res *scenario.Result, protection scenario.Protection) (podHold, error) {
	stop, ok := res.Stops[term.Name]
	if !ok || !stop.Complete() {
		return podHold{}, fmt.Errorf("pod %s: its target %s never left every ALB node's routing set", term.Name, term.IP)
	}
	start := term.Noticed
	p := podHold{name: term.Name, failed: failedTo(res.Routed, stop.Target)}
	if protection != scenario.Baseline {
		want := kubelet.ActionExec
		if protection == scenario.FixedSleep {
			want = kubelet.ActionSleep
		}
		if len(term.Hooks) != 1 || term.Hooks[0].Action != want || term.Hooks[0].Err != "" || term.Killed {
			return podHold{}, fmt.Errorf("pod %s: hooks %+v, killed %v: want one completed %s hook", term.Name, term.Hooks, term.Killed, want)
		}
		start, p.hold = term.Hooks[0].Start, term.Hooks[0].Duration()
		if m := helperEnd.FindStringSubmatch(term.Hooks[0].Output); m != nil {
			p.ended = fmt.Sprintf("  %s, quiet period %s", m[1], m[2])
			if src := helperSources.FindStringSubmatch(term.Hooks[0].Output); src != nil {
				p.ended += " (" + src[1] + ")"
			}
			var err error
			if p.quietPeriod, err = time.ParseDuration(m[2]); err != nil {
				return podHold{}, fmt.Errorf("pod %s: the helper's quiet period: %w", term.Name, err)
			}
		}
	}
	p.trueStop = stop.TrueStop().Sub(start)
	from := start.Add(-rateWindow)
	if from.Before(res.Start) {
		from = res.Start // the traffic began later
	}
	p.rate = rateTo(res.Routed, stop.Target, from, start)
	return p, nil
}

// rateTo is the rate of the routed requests to target from from to until.
func rateTo(routed []albemu.RequestRecord, target albemu.Target, from, until time.Time) float64 {
	n := 0
	for _, r := range routed {
		if r.Target == target.String() && !r.Time.Before(from) && r.Time.Before(until) {
			n++
		}
	}
	if !until.After(from) {
		return 0
	}
	return float64(n) / until.Sub(from).Seconds()
}

// failedTo counts the routed requests to target that failed: the ALB
// answered 5xx or cut the response. Requests the client gave up on (460)
// are not the pod's doing.
func failedTo(routed []albemu.RequestRecord, target albemu.Target) int {
	n := 0
	for _, r := range routed {
		if r.Target == target.String() && r.Status != 460 && (r.Status >= 500 || r.Err != "") {
			n++
		}
	}
	return n
}
