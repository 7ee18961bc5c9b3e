// Package inject is albdrain's pod mutation as a plain function: given a pod
// and the load balancer targets it serves, add the preStop hold, readiness
// gates and grace period. It knows nothing of admission or the apiserver, so
// every case can be table-tested.
package inject

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/albdrain/albdrain/internal/contract"
)

// MaxHoldLimit caps any hold: the longest deregistration delay AWS allows
// (3600 s) plus a margin for propagation.
const MaxHoldLimit = contract.MaxHoldTimeout

// helperVolumeSize bounds the emptyDir holding the helper binary.
var helperVolumeSize = resource.MustParse("32Mi")

// Options are the cluster-wide defaults of a mutation.
type Options struct {
	// Mode is the hold mode for pods that do not override it.
	Mode contract.Mode
	// MaxHold bounds a wait-mode hold.
	MaxHold time.Duration
	// Sleep is the length of a sleep-mode hold.
	Sleep time.Duration
	// Fallback is the helper's sleep when the watcher cannot answer.
	Fallback time.Duration
	// QuietPeriod is the shortest time the pod must receive no
	// load-balancer traffic before release.
	QuietPeriod time.Duration
	// QuietGaps is k: the quiet period is k mean gaps between the load
	// balancer's arrivals, within QuietPeriod and QuietPeriodMax.
	QuietGaps int
	// QuietPeriodMax is the longest quiet period; zero means QuietPeriod.
	QuietPeriodMax time.Duration
	// ShutdownBudget is the time the application gets after the hold, on
	// top of it in the grace period, for pods that set no grace period of
	// their own; a pod's own grace period is its budget.
	ShutdownBudget time.Duration
	// HelperImage is the albdrain image the init container copies the helper from.
	HelperImage string
	// HelperImagePath is the helper binary's path inside HelperImage.
	HelperImagePath string
	// WatcherURL is where the helper asks for holds.
	WatcherURL string
	// CABundle projects the ConfigMap contract.CABundleConfigMap, which
	// albdrain keeps in the pod's namespace, as the CA bundle the helper
	// trusts for an https WatcherURL; off, the helper trusts the system roots.
	CABundle bool
	// InitResources are the injected init container's requests and limits.
	InitResources corev1.ResourceRequirements
	// NoReadinessGates leaves out the load balancer controller's readiness
	// gates, for clusters where a binding may have no controller to set them.
	NoReadinessGates bool
}

// Validate reports options that would produce a broken pod.
func (o Options) Validate() error {
	var errs []error
	if _, err := contract.ParseMode(string(o.Mode)); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"max hold", o.MaxHold}, {"sleep", o.Sleep}} {
		if d.v <= 0 || d.v > MaxHoldLimit || d.v%time.Second != 0 {
			errs = append(errs, fmt.Errorf("%s %v: want whole seconds in (0, %v]", d.name, d.v, MaxHoldLimit))
		}
	}
	if o.Fallback < 0 || o.Fallback > o.MaxHold {
		errs = append(errs, fmt.Errorf("fallback %v: want 0 to max hold (%v)", o.Fallback, o.MaxHold))
	}
	if o.QuietPeriod < 0 || o.QuietPeriod >= o.MaxHold {
		errs = append(errs, fmt.Errorf("quiet period %v: want 0 to below max hold (%v)", o.QuietPeriod, o.MaxHold))
	}
	if o.QuietGaps < 0 || o.QuietGaps > MaxQuietGaps {
		errs = append(errs, fmt.Errorf("quiet gaps %d: want 0 to %d", o.QuietGaps, MaxQuietGaps))
	}
	// A longest quiet period above half a pod's hold is capped to it when
	// injected, as the quiet period is.
	if o.QuietPeriodMax != 0 && (o.QuietPeriodMax < o.QuietPeriod || o.QuietPeriodMax > MaxHoldLimit) {
		errs = append(errs, fmt.Errorf("longest quiet period %v: want from the quiet period (%v) to %v", o.QuietPeriodMax, o.QuietPeriod, MaxHoldLimit))
	}
	if o.ShutdownBudget < 0 || o.ShutdownBudget%time.Second != 0 {
		errs = append(errs, fmt.Errorf("shutdown budget %v: want whole non-negative seconds", o.ShutdownBudget))
	}
	if o.HelperImage == "" || o.HelperImagePath == "" {
		errs = append(errs, errors.New("helper image and its helper path are required"))
	}
	// Required whatever the default mode: a pod may choose wait mode itself.
	if o.WatcherURL == "" {
		errs = append(errs, errors.New("watcher URL is required"))
	}
	return errors.Join(errs...)
}

// MaxQuietGaps caps k: beyond it the quiet period is the maximum for any
// traffic the helper can observe.
const MaxQuietGaps = 1000

// overrides are a pod's own choices, read from its annotations.
type overrides struct {
	mode    contract.Mode
	maxHold time.Duration
	// quietGaps, quietMin and quietMax size the quiet period.
	quietGaps          int
	quietMin, quietMax time.Duration
}

// CheckOverrides reports what is wrong with a pod's own albdrain
// annotations, read against these defaults as Apply reads them.
func (o Options) CheckOverrides(annotations map[string]string) error {
	_, err := readOverrides(annotations, o)
	return err
}

// readOverrides applies the pod's annotations to the defaults; a malformed
// value is an error so a typo is refused at admission instead of silently ignored.
func readOverrides(ann map[string]string, o Options) (overrides, error) {
	ov := overrides{mode: o.Mode, maxHold: o.MaxHold, quietGaps: o.QuietGaps, quietMin: o.QuietPeriod, quietMax: max(o.QuietPeriodMax, o.QuietPeriod)}
	if o.Mode == contract.ModeSleep {
		ov.maxHold = o.Sleep
	}
	if v, ok := ann[contract.ModeKey]; ok {
		m, err := contract.ParseMode(strings.TrimSpace(v))
		if err != nil {
			return ov, fmt.Errorf("annotation %s: %w", contract.ModeKey, err)
		}
		ov.mode = m
		if m == contract.ModeSleep && o.Mode != contract.ModeSleep {
			ov.maxHold = o.Sleep
		}
		if m == contract.ModeWait && o.Mode != contract.ModeWait {
			ov.maxHold = o.MaxHold
		}
	}
	if v, ok := ann[contract.MaxHoldKey]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		// Compared in seconds: converting first would let a huge value
		// overflow into an accepted, negative or tiny, duration.
		if err != nil || n <= 0 || n > int64(MaxHoldLimit/time.Second) {
			return ov, fmt.Errorf("annotation %s=%q: want a whole number of seconds from 1 to %d", contract.MaxHoldKey, v, int64(MaxHoldLimit/time.Second))
		}
		ov.maxHold = time.Duration(n) * time.Second
	}
	return ov, readQuietOverrides(ann, &ov)
}

// readQuietOverrides applies the pod's quiet-period annotations.
func readQuietOverrides(ann map[string]string, ov *overrides) error {
	limit := int64(MaxHoldLimit / time.Second)
	for _, a := range []struct {
		key    string
		lo, hi int64
		set    func(int64)
	}{
		{contract.QuietGapsKey, 0, MaxQuietGaps, func(n int64) { ov.quietGaps = int(n) }},
		{contract.QuietPeriodKey, 0, limit, func(n int64) { ov.quietMin = time.Duration(n) * time.Second }},
		{contract.QuietPeriodMaxKey, 0, limit, func(n int64) { ov.quietMax = time.Duration(n) * time.Second }},
	} {
		v, ok := ann[a.key]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < a.lo || n > a.hi {
			return fmt.Errorf("annotation %s=%q: want a whole number from %d to %d", a.key, v, a.lo, a.hi)
		}
		a.set(n)
	}
	if ov.quietMin > ov.quietMax {
		return fmt.Errorf("quiet period %v (%s) above the longest quiet period %v (%s)", ov.quietMin, contract.QuietPeriodKey, ov.quietMax, contract.QuietPeriodMaxKey)
	}
	return nil
}
