package contract

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParse feeds arbitrary helper command lines (arguments separated by
// NUL) to Parse: it must not panic, must accept only what it can bound (a
// positive max-hold, nothing negative, real port numbers), and what it
// accepts must render back, through Command, to a command line that parses
// to the same hold.
func FuzzParse(f *testing.F) {
	for _, args := range [][]string{
		{"wait", "--max-hold=330s", "--fallback=30s", "--quiet-period=3s", "--port=8080", "--port=80"},
		{"sleep", "--max-hold=30s"},
		{"sleep", "--max-hold=30s", "--port=1", "--fallback=1s"},
		{"wait", "--max-hold=1m", `--then={"httpGet":{"path":"/stop","port":9000}}`},
		{"wait", "--max-hold=1m", `--then={"httpGet":{"port":"http","host":"::1","scheme":"HTTPS"}}`},
		{"wait", "--max-hold=1m", `--then={"exec":{"command":["sh","-c","echo 'a b'"]}}`},
		{"wait", "--max-hold=1m", `--then={"sleep":{"seconds":5}}`},
		{"wait", "--max-hold=1m", `--then={"tcpSocket":{"port":80}}`},
		{"wait", "--max-hold=1m", `--then={}`},
		{"wait", "--max-hold=1m", `--then=null`},
		{"wait", "--max-hold=1m", `--then={"exec":{"command":["x"]},"unknown":1}`},
		{"wait", "--max-hold=-1s"},
		{"wait", "--max-hold=9223372036854775807ns"},
		{"wait", "--max-hold=10s", "--port=0"},
		{"wait", "--max-hold=10s", "--port=65536"},
		{"wait", "--max-hold=10s", "--port=-1"},
		{"wait", "-max-hold", "10s", "--", "extra"},
		{"wait", "--help"},
		{"nap"},
		{},
	} {
		f.Add(strings.Join(args, "\x00"))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		var args []string
		if joined != "" {
			args = strings.Split(joined, "\x00")
		}
		s, err := Parse(args)
		if err != nil {
			return
		}
		if s.MaxHold <= 0 || s.Fallback < 0 || s.QuietPeriod < 0 || s.Budget < 0 {
			t.Fatalf("accepted an unbounded hold: %+v", s)
		}
		for _, p := range s.Ports {
			if p < 1 || p > 65535 {
				t.Fatalf("accepted port %d", p)
			}
		}
		cmd := s.Command("/opt/albdrain/albdrain-hold")
		again, err := Parse(cmd[1:])
		if err != nil {
			t.Fatalf("Parse(Command(%+v)) = %v; command %q", s, err, cmd)
		}
		want := s
		if s.Mode == ModeSleep {
			// Sleep mode renders only what a sleep uses.
			want.Fallback, want.QuietPeriod, want.Ports = 0, 0, nil
		}
		// An empty list and no list render the same (omitempty) and mean the
		// same: an exec preStop with no command is refused either way.
		if d := cmp.Diff(want, again, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("round trip through %q (-want +got):\n%s", cmd, d)
		}
	})
}

// FuzzAnswer feeds arbitrary JSON to Answer, as a helper reads a watcher's
// answer: whatever it accepts is a final outcome or a hand-off, never both,
// bounded by MaxHoldTimeout, and it reads back what it writes.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{
		`{"outcome":"deregistering","message":"m","boundMillis":2000,"traffic":{"boundMillis":2000,"ports":[{"port":8080,"flows":true}],"healthChecks":[{"port":8080,"protocol":"HTTP","path":"/healthz","intervalMillis":5000}]}}`,
		`{"outcome":"deregistering","traffic":{"boundMillis":2000,"ports":[{"port":80}]}}`,
		`{"outcome":"deregistered","boundMillis":1,"traffic":{}}`,
		`{"outcome":"timeout","message":"target still in service"}`,
		`{"outcome":"fallback","boundMillis":-5}`,
		`{"outcome":"quiet","boundMillis":9223372036854775807}`,
		`{}`,
		`null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, wire string) {
		var a Answer
		if json.Unmarshal([]byte(wire), &a) != nil {
			return
		}
		if (a.Final == nil) == (a.Handoff == nil) {
			t.Fatalf("%s read as %+v: want a final outcome or a hand-off", wire, a)
		}
		if a.Final != nil && a.Final.Outcome == OutcomeDeregistering {
			t.Fatalf("%s read as a final deregistering", wire)
		}
		if b := a.Wait().Bound; b < 0 || b > MaxHoldTimeout {
			t.Fatalf("%s read with bound %v", wire, b)
		}
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var again Answer
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("reading back %s: %v", out, err)
		}
		// An empty list and none write the same (omitempty) and mean the same.
		if d := cmp.Diff(a, again, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("%s read back through %s (-first +again):\n%s", wire, out, d)
		}
	})
}
