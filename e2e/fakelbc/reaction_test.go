package fakelbc_test

import (
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/fakelbc"
)

// TestDefaultLagFollowsMeasurement pins the reaction lag the stand-in adds
// by default, and the one the scenarios and the demo use, to the real
// controller's measured reaction (fakelbc.MeasuredReal, v3.5.0): the
// stand-in's own measured median plus the lag must lie between the real
// controller's fastest and its 90th percentile. A lag like the old
// 0.5-1s makes the stand-in deregister far later than the real
// controller, so albdrain's job would look easier than it is.
func TestDefaultLagFollowsMeasurement(t *testing.T) {
	real, own := fakelbc.MeasuredReal, fakelbc.MeasuredStandIn
	if real.Min > real.Median || real.Median > real.P90 || real.P90 > real.Max || own.Min > own.Median {
		t.Fatalf("measured figures out of order: real %+v, stand-in %+v", real, own)
	}
	for _, c := range []struct {
		name     string
		min, max time.Duration
	}{
		{"fakelbc defaults", fakelbc.DefaultMinLag, fakelbc.DefaultMaxLag},
		{"cluster.DefaultTimings", cluster.DefaultTimings().LBCMinLag, cluster.DefaultTimings().LBCMaxLag},
		{"cluster.FieldTimings", cluster.FieldTimings().LBCMinLag, cluster.FieldTimings().LBCMaxLag},
	} {
		if lo, hi := own.Median+c.min, own.Median+c.max; lo < real.Min || hi > real.P90 {
			t.Errorf("%s: lag %s-%s puts the stand-in's median reaction at %s-%s, outside the real controller's measured %s-%s (min-p90)",
				c.name, c.min, c.max, lo, hi, real.Min, real.P90)
		}
	}
}
