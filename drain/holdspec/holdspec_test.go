package holdspec

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestCommandParseRoundTrip(t *testing.T) {
	for _, s := range []Spec{
		{Mode: ModeWait, MaxHold: 330 * time.Second, Fallback: 30 * time.Second, QuietPeriod: 3 * time.Second, Ports: []int32{80, 8080}},
		{Mode: ModeWait, MaxHold: time.Minute, Fallback: time.Second, QuietPeriod: 0, Ports: []int32{9000},
			Then: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/stop", Port: intstr.FromInt32(9000)}}},
		{Mode: ModeSleep, MaxHold: 30 * time.Second, Then: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo 'a b'"}}}},
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
		{"wait", "--max-hold=10s", "--fallback=-1s"},
	} {
		if _, err := Parse(args); err == nil {
			t.Errorf("Parse(%q) accepted", args)
		}
	}
}
