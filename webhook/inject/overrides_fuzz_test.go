package inject

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// FuzzOverrides feeds arbitrary values of the per-pod annotations, and
// arbitrary grace periods, to the mutation. Each annotation is accepted
// exactly when it is valid (a mode name; a whole number of seconds from 1 to
// the limit, surrounding space allowed), a refusal names the annotation and
// leaves the pod alone, and an accepted value is the hold the pod gets,
// covered by its grace period, which is never lowered.
func FuzzOverrides(f *testing.F) {
	for _, s := range []struct {
		mode, maxHold    string
		setMode, setMax  bool
		defaultSleepMode bool
		grace            int64
	}{
		{"wait", "60", true, true, false, -1},
		{"sleep", "25", true, true, false, 0},
		{" sleep ", " 3900 ", true, true, true, 30},
		{"Sleep", "3901", true, true, false, -1},
		{"", "0", false, true, false, -1},
		{"wait", "-1", true, true, true, -1},
		{"wait", "+5", true, true, false, 99999},
		{"wait", "30s", false, true, false, -1},
		{"wait", "9223372037", false, true, false, -1},
		{"wait", "18446744074", false, true, false, -1},
		{"wait", "9223372036854775807", false, true, false, -1},
		{"nap", "1e3", true, false, false, -1},
		{"wait\x00", "0x10", true, true, false, -1},
		{"wait", "60", false, false, false, 10_000_000_000},
		{"sleep", "60", true, false, false, math.MaxInt64},
	} {
		f.Add(s.mode, s.maxHold, s.setMode, s.setMax, s.defaultSleepMode, s.grace)
	}
	f.Fuzz(func(t *testing.T, mode, maxHold string, setMode, setMax, defaultSleepMode bool, grace int64) {
		o := testOptions()
		if defaultSleepMode {
			o.Mode = contract.ModeSleep
		}
		pod := podWith(container("app", port("http", 8080)))
		// A negative value stands for none set.
		if grace >= 0 {
			pod.Spec.TerminationGracePeriodSeconds = &grace
		}
		pod.Annotations = map[string]string{}
		if setMode {
			pod.Annotations[contract.ModeKey] = mode
		}
		if setMax {
			pod.Annotations[contract.MaxHoldKey] = maxHold
		}
		before := pod.DeepCopy()

		// The oracle, written apart from readOverrides.
		wantMode, modeOK := o.Mode, true
		if setMode {
			switch m := contract.Mode(strings.TrimSpace(mode)); m {
			case contract.ModeWait, contract.ModeSleep:
				wantMode = m
			default:
				modeOK = false
			}
		}
		wantHold := o.MaxHold
		if wantMode == contract.ModeSleep {
			wantHold = o.Sleep
		}
		maxOK := true
		if setMax {
			n, err := strconv.ParseInt(strings.TrimSpace(maxHold), 10, 64)
			maxOK = err == nil && n >= 1 && n <= int64(MaxHoldLimit/time.Second)
			wantHold = time.Duration(n) * time.Second
		}

		_, injected, err := Apply(pod, []lbc.Backend{tgbTarget}, o)
		if !modeOK || !maxOK {
			if err == nil {
				t.Fatalf("annotations %q accepted, want a refusal", before.Annotations)
			}
			key := contract.MaxHoldKey
			if !modeOK {
				key = contract.ModeKey
			}
			if !strings.Contains(err.Error(), key) {
				t.Errorf("refusal %q does not name %s", err, key)
			}
			if d := cmp.Diff(before, pod); d != "" {
				t.Errorf("refused pod changed:\n%s", d)
			}
			return
		}
		if err != nil || !injected {
			t.Fatalf("annotations %q: Apply = %v, %v; want an injection", before.Annotations, injected, err)
		}
		pre := pod.Spec.Containers[0].Lifecycle.PreStop
		var got time.Duration
		switch {
		case wantMode == contract.ModeSleep && pre.Sleep != nil:
			got = time.Duration(pre.Sleep.Seconds) * time.Second
		case pre.Exec != nil:
			spec, err := contract.Parse(pre.Exec.Command[1:])
			if err != nil {
				t.Fatalf("rendered hold %q does not parse: %v", pre.Exec.Command, err)
			}
			if spec.Mode != wantMode {
				t.Errorf("hold mode %s, want %s", spec.Mode, wantMode)
			}
			got = spec.MaxHold
		default:
			t.Fatalf("preStop %+v is no hold", pre)
		}
		if got != wantHold {
			t.Errorf("annotations %q: hold of %v, want %v", before.Annotations, got, wantHold)
		}
		// The hold comes on top of the application's budget: the pod's own
		// grace period, or the default one when it sets none or zero.
		budget := int64(o.ShutdownBudget / time.Second)
		if grace > 0 {
			budget = min(grace, maxBudgetSeconds)
		}
		g := pod.Spec.TerminationGracePeriodSeconds
		if g == nil || *g < budget+int64(wantHold/time.Second) {
			t.Errorf("grace period %v does not cover the hold %v on top of the budget %ds", ptr.Deref(g, -1), wantHold, budget)
		}
		if g != nil && grace >= 0 && *g < grace {
			t.Errorf("grace period lowered from %d to %d", grace, *g)
		}
	})
}
