package webhook

import (
	"flag"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadinessGatesFlag: --readiness-gates=false turns gate injection off
// for the whole webhook; it is on by default.
func TestReadinessGatesFlag(t *testing.T) {
	tests := []struct {
		args []string
		want bool // NoReadinessGates
	}{
		{nil, false},
		{[]string{"--readiness-gates=false"}, true},
		{[]string{"--readiness-gates=true"}, false},
	}
	for _, tc := range tests {
		var c Config
		fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
		c.BindFlags(fs)
		if err := fs.Parse(append([]string{"--helper-image=albdrain:test", "--watcher-url=https://albdrain:8443"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		o, err := c.Options()
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tc.want, o.NoReadinessGates); d != "" {
			t.Errorf("%v: NoReadinessGates (-want +got):\n%s", tc.args, d)
		}
	}
}
