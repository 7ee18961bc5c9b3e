package albemu_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/albdrain/albdrain/e2e/albemu"
)

func TestParseLag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string // String of the parsed model
		q50     time.Duration
		wantErr string
	}{
		{in: "2s", want: "constant:2s", q50: 2 * time.Second},
		{in: "constant:1.5s", want: "constant:1.5s", q50: 1500 * time.Millisecond},
		{in: "uniform:min=1s,max=3s", want: "uniform:min=1s,max=3s", q50: 2 * time.Second},
		{in: "lognormal:median=2s,p99=10s", want: "lognormal:median=2s,p99=10s", q50: 2 * time.Second},
		{in: "lognormal:p99=10s,median=2s,max=20s", want: "lognormal:median=2s,p99=10s,max=20s", q50: 2 * time.Second},
		{in: "samples:3s,1s,2s", want: "samples:1s,2s,3s", q50: 2 * time.Second},
		{in: "straggler:by=4,slow=0.2,max=3s,min=1s", want: "straggler:min=1s,max=3s,slow=0.2,by=4", q50: 2250 * time.Millisecond},
		{in: "straggler:min=1s,max=3s,slow=0.2", wantErr: "needs min="},
		{in: "straggler:min=1s,max=3s,slow=1.2,by=4", wantErr: "a share"},
		{in: "straggler:min=1s,max=3s,slow=0.2,by=0.5", wantErr: "factor"},
		{in: "straggler:min=1s,max=3s,slow=0.2,by=4,p=1", wantErr: "not \"p\""},
		{in: "", wantErr: "want a duration"},
		{in: "gamma:k=2", wantErr: "unknown kind"},
		{in: "uniform:min=3s,max=1s", wantErr: "min above max"},
		{in: "uniform:min=1s", wantErr: "needs min="},
		{in: "lognormal:median=2s,p99=1s", wantErr: "0 < median < p99"},
		{in: "lognormal:median=2s,p99=10s,max=1s", wantErr: "max below the median"},
		{in: "lognormal:median=2s,p99=10s,p50=1s", wantErr: "takes only"},
		{in: "samples:1s,-1s", wantErr: "non-negative"},
		{in: "constant:soon", wantErr: "non-negative"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			m, err := albemu.ParseLag(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseLag(%q) = %v, %v; want an error containing %q", tc.in, m, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, m.String()); diff != "" {
				t.Errorf("String (-want +got):\n%s", diff)
			}
			again, err := albemu.ParseLag(m.String())
			if err != nil || again.String() != m.String() {
				t.Errorf("String does not round-trip: %q gives %v, %v", m.String(), again, err)
			}
			if got := m.Quantile(0.5); (got - tc.q50).Abs() > time.Millisecond {
				t.Errorf("median %s, want %s", got, tc.q50)
			}
		})
	}
}

// The lognormal's p99 is where it was asked to be, among draws as well as
// analytically, and the clamp bounds every draw.
func TestLognormalLag(t *testing.T) {
	t.Parallel()
	m, err := albemu.ParseLag("lognormal:median=2s,p99=10s,max=15s")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Quantile(0.99); (got - 10*time.Second).Abs() > 10*time.Millisecond {
		t.Errorf("p99 %s, want 10s", got)
	}
	draws := m.Draws(7, 20000)
	below2, below10 := 0, 0
	for _, d := range draws {
		if d > 15*time.Second {
			t.Fatalf("draw %s above the clamp", d)
		}
		if d <= 2*time.Second {
			below2++
		}
		if d <= 10*time.Second {
			below10++
		}
	}
	if share := float64(below2) / float64(len(draws)); share < 0.48 || share > 0.52 {
		t.Errorf("%.3f of draws at or below the median, want about 0.5", share)
	}
	if share := float64(below10) / float64(len(draws)); share < 0.985 || share > 0.995 {
		t.Errorf("%.3f of draws at or below the p99, want about 0.99", share)
	}
	// The slowest of three nodes is slower than one node.
	if one, three := m.Quantile(0.9), m.QuantileOfMax(0.9, 3); three <= one {
		t.Errorf("p90 of the slowest of 3 nodes %s, not above one node's %s", three, one)
	}
}

// A straggler model's slow share lags by times as long, among draws as well
// as analytically.
func TestStragglerLag(t *testing.T) {
	t.Parallel()
	m, err := albemu.ParseLag("straggler:min=1s,max=3s,slow=0.2,by=4")
	if err != nil {
		t.Fatal(err)
	}
	// 80% of draws in 1-3 s, 20% in 4-12 s: the p99 is 4 s + 0.95 x 8 s.
	if got := m.Quantile(0.99); (got - 11600*time.Millisecond).Abs() > time.Millisecond {
		t.Errorf("p99 %s, want 11.6s", got)
	}
	draws := m.Draws(7, 20000)
	slow := 0
	for _, d := range draws {
		if d < time.Second || d > 12*time.Second || (d > 3*time.Second && d < 4*time.Second) {
			t.Fatalf("draw %s outside 1-3 s and 4-12 s", d)
		}
		if d > 3*time.Second {
			slow++
		}
	}
	if share := float64(slow) / float64(len(draws)); share < 0.18 || share > 0.22 {
		t.Errorf("%.3f of draws slow, want about 0.2", share)
	}
	if diff := cmp.Diff(draws[:50], m.Draws(7, 50)); diff != "" {
		t.Errorf("same seed, different draws:\n%s", diff)
	}
}

func TestLagDrawsAreSeeded(t *testing.T) {
	t.Parallel()
	m, err := albemu.ParseLag("uniform:min=0s,max=10s")
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.Draws(42, 50), m.Draws(42, 50)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different draws:\n%s", diff)
	}
	if cmp.Equal(a, m.Draws(43, 50)) {
		t.Error("another seed gave the same draws")
	}
	for _, d := range a {
		if d < 0 || d > 10*time.Second {
			t.Fatalf("draw %s outside uniform 0-10s", d)
		}
	}
	samples, err := albemu.ParseLag("samples:1s,5s")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[time.Duration]bool{}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		seen[samples.Draw(r)] = true
	}
	if diff := cmp.Diff(map[time.Duration]bool{time.Second: true, 5 * time.Second: true}, seen); diff != "" {
		t.Errorf("samples drawn (-want +got):\n%s", diff)
	}
}
