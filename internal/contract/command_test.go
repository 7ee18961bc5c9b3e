package contract

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCommandParseRoundTrip(t *testing.T) {
	for _, s := range []Spec{
		{Mode: ModeWait, MaxHold: 330 * time.Second, Fallback: 30 * time.Second, QuietPeriod: 3 * time.Second, Ports: []int32{80, 8080}},
		{Mode: ModeWait, MaxHold: 330 * time.Second, Fallback: 30 * time.Second, QuietPeriod: 3 * time.Second, Ports: []int32{80}, Budget: 120 * time.Second},
		{Mode: ModeWait, MaxHold: 330 * time.Second, Fallback: 30 * time.Second, QuietPeriod: time.Second, QuietGaps: 10, QuietPeriodMax: 30 * time.Second, Ports: []int32{80}},
		{Mode: ModeWait, MaxHold: time.Minute, Fallback: time.Second, QuietPeriod: 0, Ports: []int32{9000},
			Then: &Handler{HTTPGet: &HTTPGetAction{Path: "/stop", Port: "9000", HTTPHeaders: []HTTPHeader{{Name: "X", Value: "y"}}}}},
		{Mode: ModeSleep, MaxHold: 30 * time.Second, Then: &Handler{Exec: &ExecAction{Command: []string{"sh", "-c", "echo 'a b'"}}}},
	} {
		cmd := s.Command("/x/albdrain-hold")
		got, err := Parse(cmd[1:])
		if err != nil {
			t.Fatalf("Parse(%q): %v", cmd, err)
		}
		if d := cmp.Diff(s, got); d != "" {
			t.Errorf("round trip of %q (-want +got):\n%s", cmd, d)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"nap"},
		{"wait"},
		{"wait", "--max-hold=-1s"},
		{"wait", "--max-hold=10s", "--port=0"},
		{"wait", "--max-hold=10s", "--port=70000"},
		{"wait", "--max-hold=10s", "--then={bad json"},
		{"wait", "--max-hold=10s", `--then={"exec":{"command":["x"]},"unknown":1}`},
		{"wait", "--max-hold=10s", "extra"},
		{"wait", "--max-hold=10s", `--then={"httpGet":{"port":[80]}}`},
		{"wait", "--max-hold=10s", "--fallback=-1s"},
		{"wait", "--max-hold=10s", "--quiet-gaps=-1"},
		{"wait", "--max-hold=10s", "--shutdown-budget=-1s"},
		{"wait", "--max-hold=10s", "--quiet-period=5s", "--quiet-gaps=3", "--quiet-period-max=1s"},
	} {
		if _, err := Parse(args); err == nil {
			t.Errorf("Parse(%q) accepted", args)
		}
	}
}

func TestHandlerPortJSON(t *testing.T) {
	for in, want := range map[string]Port{`8080`: "8080", `"http"`: "http", `"8080"`: "8080"} {
		var p Port
		if err := p.UnmarshalJSON([]byte(in)); err != nil || p != want {
			t.Errorf("UnmarshalJSON(%s) = %q, %v; want %q", in, p, err, want)
		}
	}
	for p, want := range map[Port]string{"8080": `8080`, "http": `"http"`} {
		if b, err := p.MarshalJSON(); err != nil || string(b) != want {
			t.Errorf("MarshalJSON(%q) = %s, %v; want %s", p, b, err, want)
		}
	}
	if n, ok := Port("http").Number(); ok {
		t.Errorf("Number of a named port = %d, true", n)
	}
}
