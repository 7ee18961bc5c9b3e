package release

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/albdrain/albdrain/internal/contract"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func seen(state string) Observation { return Observation{Seen: true, State: state} }

func drainingFor(d time.Duration) Observation {
	return Observation{Seen: true, State: StateDraining, DrainingSince: t0.Add(-d)}
}

func TestDecide(t *testing.T) {
	hold := Decision{}
	release := func(o contract.Outcome) Decision { return Decision{Release: true, Outcome: o} }
	handoff := Decision{Release: true, Handoff: true}
	tests := []struct {
		name          string
		policy        Policy
		wasRegistered bool
		targets       []Observation
		want          Decision
	}{
		{"no target groups: never registered", PolicyDeregistered, false, nil, release(contract.OutcomeNotRegistered)},
		{"not yet polled", PolicyDeregistered, true, []Observation{{}}, hold},
		{"healthy holds", PolicyDeregistered, true, []Observation{seen("healthy")}, hold},
		{"initial holds", PolicyDeregistered, true, []Observation{seen("initial")}, hold},
		{"unhealthy holds", PolicyDeregistered, true, []Observation{seen("unhealthy")}, hold},
		{"unavailable holds", PolicyDeregistered, true, []Observation{seen("unavailable")}, hold},
		{"draining holds under deregistered", PolicyDeregistered, true, []Observation{drainingFor(time.Hour)}, hold},
		{"absent releases", PolicyDeregistered, true, []Observation{seen("")}, release(contract.OutcomeDeregistered)},
		{"unused releases", PolicyDeregistered, true, []Observation{seen(StateUnused)}, release(contract.OutcomeDeregistered)},
		{"unused and never registered", PolicyDeregistered, false, []Observation{seen(StateUnused)}, release(contract.OutcomeNotRegistered)},
		{"deleted target group releases", PolicyDeregistered, true, []Observation{{Seen: true, GroupGone: true}}, release(contract.OutcomeDeregistered)},
		{"one group still healthy holds", PolicyDeregistered, true, []Observation{seen(StateUnused), seen("healthy")}, hold},
		{"one group not yet polled holds", PolicyDeregistered, true, []Observation{seen(StateUnused), {}}, hold},
		{"every group out releases", PolicyDeregistered, true, []Observation{seen(StateUnused), seen("")}, release(contract.OutcomeDeregistered)},
		{"draining short of settle holds", PolicyDraining, true, []Observation{drainingFor(9 * time.Second)}, hold},
		{"draining for settle releases", PolicyDraining, true, []Observation{drainingFor(10 * time.Second)}, release(contract.OutcomeDrainingSettled)},
		{"unhealthy.draining settles too", PolicyDraining, true, []Observation{{Seen: true, State: StateUnhealthyDraining, DrainingSince: t0.Add(-time.Minute)}}, release(contract.OutcomeDrainingSettled)},
		{"settled plus out is settled", PolicyDraining, true, []Observation{drainingFor(time.Minute), seen(StateUnused)}, release(contract.OutcomeDrainingSettled)},
		{"settled plus healthy holds", PolicyDraining, true, []Observation{drainingFor(time.Minute), seen("healthy")}, hold},
		{"out under draining policy is deregistered", PolicyDraining, true, []Observation{seen("")}, release(contract.OutcomeDeregistered)},
		{"draining releases to the helper under quiet", PolicyQuiet, true, []Observation{drainingFor(0)}, handoff},
		{"unhealthy.draining too", PolicyQuiet, true, []Observation{{Seen: true, State: StateUnhealthyDraining, DrainingSince: t0}}, handoff},
		{"draining plus out under quiet", PolicyQuiet, true, []Observation{drainingFor(time.Second), seen(""), {Seen: true, GroupGone: true}}, handoff},
		{"draining plus healthy holds under quiet", PolicyQuiet, true, []Observation{drainingFor(time.Hour), seen("healthy")}, hold},
		{"draining plus unpolled holds under quiet", PolicyQuiet, true, []Observation{drainingFor(time.Hour), {}}, hold},
		{"healthy holds under quiet", PolicyQuiet, true, []Observation{seen("healthy")}, hold},
		{"out everywhere under quiet is deregistered", PolicyQuiet, true, []Observation{seen(StateUnused), seen("")}, release(contract.OutcomeDeregistered)},
		{"never registered under quiet", PolicyQuiet, false, []Observation{seen("")}, release(contract.OutcomeNotRegistered)},
		{"failing group falls back under quiet", PolicyQuiet, true, []Observation{drainingFor(0), {Seen: true, Failures: 3}}, release(contract.OutcomeFallback)},
		{"failures below threshold keep last state", PolicyDeregistered, true, []Observation{{Seen: true, State: "healthy", Failures: 2}}, hold},
		{"failures at threshold fall back", PolicyDeregistered, true, []Observation{{Seen: true, State: "healthy", Failures: 3}}, release(contract.OutcomeFallback)},
		{"failing group falls back even if another is unpolled", PolicyDeregistered, true, []Observation{{}, {Failures: 3}}, release(contract.OutcomeFallback)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(Input{
				Policy:        tt.policy,
				Settle:        10 * time.Second,
				FallbackAfter: 3,
				Now:           t0,
				WasRegistered: tt.wasRegistered,
				Targets:       tt.targets,
			})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	t1 := t0.Add(5 * time.Second)
	tests := []struct {
		name      string
		prev      Observation
		state     string
		groupGone bool
		want      Observation
	}{
		{"first draining starts the clock", Observation{}, StateDraining, false, Observation{Seen: true, State: StateDraining, DrainingSince: t1}},
		{"still draining keeps the clock", drainingFor(0), StateDraining, false, Observation{Seen: true, State: StateDraining, DrainingSince: t0}},
		{"leaving draining clears the clock", drainingFor(0), StateUnused, false, Observation{Seen: true, State: StateUnused}},
		{"success clears failures", Observation{Seen: true, State: "healthy", Failures: 2}, "healthy", false, Observation{Seen: true, State: "healthy"}},
		{"gone group", drainingFor(0), "", true, Observation{Seen: true, GroupGone: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Observe(tt.prev, tt.state, tt.groupGone, t1)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Observe (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailedKeepsLastState(t *testing.T) {
	got := Failed(Failed(seen("healthy")))
	if diff := cmp.Diff(Observation{Seen: true, State: "healthy", Failures: 2}, got); diff != "" {
		t.Errorf("Failed (-want +got):\n%s", diff)
	}
}

func TestDeadline(t *testing.T) {
	tests := []struct {
		name string
		b    Bounds
		want time.Time
	}{
		{"requested only", Bounds{Requested: t0.Add(time.Minute), MaxDeregistrationDelay: -1}, t0.Add(time.Minute)},
		{"grace earlier", Bounds{Requested: t0.Add(time.Minute), Grace: t0.Add(30 * time.Second), MaxDeregistrationDelay: -1}, t0.Add(30 * time.Second)},
		{"grace later", Bounds{Requested: t0.Add(time.Minute), Grace: t0.Add(2 * time.Minute), MaxDeregistrationDelay: -1}, t0.Add(time.Minute)},
		{"grace less the budget", Bounds{Requested: t0.Add(10 * time.Minute), Grace: t0.Add(5 * time.Minute), TerminationStart: t0, Budget: 2 * time.Minute, MaxDeregistrationDelay: -1}, t0.Add(3 * time.Minute)},
		// kubectl drain --grace-period=30 on a pod whose application needs
		// 2 minutes: hold and application share the 30 s.
		{"shortened grace shared", Bounds{Requested: t0.Add(10 * time.Minute), Grace: t0.Add(30 * time.Second), TerminationStart: t0, Budget: 2 * time.Minute, MaxDeregistrationDelay: -1}, t0.Add(15 * time.Second)},
		{"budget without a start", Bounds{Requested: t0.Add(10 * time.Minute), Grace: t0.Add(5 * time.Minute), Budget: time.Minute, MaxDeregistrationDelay: -1}, t0.Add(4 * time.Minute)},
		{
			"deregistration delay plus margin from termination start",
			Bounds{Requested: t0.Add(10 * time.Minute), TerminationStart: t0.Add(-5 * time.Second), MaxDeregistrationDelay: 20 * time.Second, Margin: 15 * time.Second},
			t0.Add(30 * time.Second),
		},
		{
			"zero delay still gets the margin",
			Bounds{Requested: t0.Add(10 * time.Minute), TerminationStart: t0, MaxDeregistrationDelay: 0, Margin: 15 * time.Second},
			t0.Add(15 * time.Second),
		},
		{
			"unknown delay is not a bound",
			Bounds{Requested: t0.Add(10 * time.Minute), TerminationStart: t0, MaxDeregistrationDelay: -1, Margin: 15 * time.Second},
			t0.Add(10 * time.Minute),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Deadline(tt.b); !got.Equal(tt.want) {
				t.Errorf("Deadline = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	for _, s := range []string{"deregistered", "draining", "quiet"} {
		if p, err := ParsePolicy(s); err != nil || string(p) != s {
			t.Errorf("ParsePolicy(%q) = %q, %v", s, p, err)
		}
	}
	if _, err := ParsePolicy("healthy"); err == nil {
		t.Error("ParsePolicy(healthy) succeeded")
	}
}
