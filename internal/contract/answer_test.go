package contract

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAnswerWireForm decodes answers as watchers and helpers of the
// previous version write them into Answer, and checks both what they mean
// and that encoding gives the same bytes back: helpers in running pods read
// the new watcher's answers, and new helpers the old watcher's.
func TestAnswerWireForm(t *testing.T) {
	traffic := &Traffic{
		Ports:        []TrafficPort{{Port: 8080, Flows: true}},
		HealthChecks: []HealthCheck{{Port: 8080, Protocol: "HTTP", Path: "/healthz", IntervalMillis: 5000}},
	}
	for _, tc := range []struct {
		name, wire string
		want       Answer
	}{{
		name: "hand-off",
		wire: `{"outcome":"deregistering","message":"m","boundMillis":2000,"traffic":{"boundMillis":2000,"ports":[{"port":8080,"flows":true}],"healthChecks":[{"port":8080,"protocol":"HTTP","path":"/healthz","intervalMillis":5000}]}}`,
		want: NewHandoff("m", Wait{Bound: 2 * time.Second, Traffic: traffic}),
	}, {
		name: "final with a quiet wait",
		wire: `{"outcome":"deregistered","message":"m","boundMillis":1,"traffic":{"boundMillis":1,"ports":[{"port":8080,"flows":true}],"healthChecks":[{"port":8080,"protocol":"HTTP","path":"/healthz","intervalMillis":5000}]}}`,
		want: NewFinal(OutcomeDeregistered, "m", Wait{Bound: time.Millisecond, Traffic: traffic}),
	}, {
		name: "fallback within the bound",
		wire: `{"outcome":"fallback","message":"ELBv2 failed","boundMillis":30000}`,
		want: NewFinal(OutcomeFallback, "ELBv2 failed", Wait{Bound: 30 * time.Second}),
	}, {
		name: "timeout",
		wire: `{"outcome":"timeout","message":"target still in service"}`,
		want: NewFinal(OutcomeTimeout, "target still in service", Wait{}),
	}, {
		name: "hand-off without traffic",
		wire: `{"outcome":"deregistering","boundMillis":60000}`,
		want: NewHandoff("", Wait{Bound: time.Minute}),
	}, {
		name: "the helper's own",
		wire: `{"outcome":"not_terminating","message":"the pod is not going away"}`,
		want: NewFinal(OutcomeNotTerminating, "the pod is not going away", Wait{}),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var got Answer
			if err := json.Unmarshal([]byte(tc.wire), &got); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("decoded (-want +got):\n%s", d)
			}
			again, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != tc.wire {
				t.Errorf("encoded back as\n%s\nwant\n%s", again, tc.wire)
			}
		})
	}
}

// A watcher of an earlier version sent a hand-off's bound only with the
// traffic; it is read as the bound, and written in both places.
func TestAnswerFromAnEarlierWatcher(t *testing.T) {
	var got Answer
	if err := json.Unmarshal([]byte(`{"outcome":"deregistering","traffic":{"boundMillis":2000,"ports":[{"port":80}]}}`), &got); err != nil {
		t.Fatal(err)
	}
	want := NewHandoff("", Wait{Bound: 2 * time.Second, Traffic: &Traffic{Ports: []TrafficPort{{Port: 80}}}})
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("decoded (-want +got):\n%s", d)
	}
}

func TestAnswerLater(t *testing.T) {
	a := NewHandoff("m", Wait{Bound: time.Second, Traffic: &Traffic{}})
	if got := a.Later(300 * time.Millisecond).Wait().Bound; got != 700*time.Millisecond {
		t.Errorf("bound 300ms later = %v, want 700ms", got)
	}
	if got := a.Later(time.Hour).Wait().Bound; got != time.Millisecond {
		t.Errorf("bound past its end = %v, want 1ms: zero would read as no bound", got)
	}
	if a.Wait().Bound != time.Second {
		t.Error("Later changed the answer it was given")
	}
	if got := NewFinal(OutcomeTimeout, "", Wait{}).Later(time.Second).Wait().Bound; got != 0 {
		t.Errorf("unknown bound later = %v, want still unknown", got)
	}
}

func TestWaitsForQuiet(t *testing.T) {
	got := map[string]bool{"handoff": NewHandoff("", Wait{}).WaitsForQuiet()}
	for _, o := range append([]Outcome{OutcomeNotTerminating}, Outcomes...) {
		got[string(o)] = NewFinal(o, "", Wait{}).WaitsForQuiet()
	}
	want := map[string]bool{
		"handoff": true, "deregistered": true, "draining_settled": true, "fallback": true,
		"not_terminating": false, "not_registered": false, "timeout": false,
		// Never a watcher's answer; a helper that read one waits, as before.
		"quiet": true, "bound": true,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("waits for quiet (-want +got):\n%s", d)
	}
}
