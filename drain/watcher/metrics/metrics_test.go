package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/albdrain/albdrain/internal/contract"
)

func TestObserveHold(t *testing.T) {
	m := New()
	reg := prometheus.NewPedanticRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	m.ObserveHold(contract.OutcomeDeregistered, 3*time.Second)
	m.ObserveHold(contract.OutcomeDeregistered, 4*time.Second)
	m.ObserveHold(contract.OutcomeFallback, time.Second)
	m.ObserveHold(contract.OutcomeQuiet, 2*time.Second)

	want := `
# HELP albdrain_holds_total Holds ended, by outcome: quiet (no load-balancer traffic for the quiet period), bound (traffic until the hold's bound), deregistered, draining_settled, not_registered, timeout or fallback.
# TYPE albdrain_holds_total counter
albdrain_holds_total{outcome="bound"} 0
albdrain_holds_total{outcome="deregistered"} 2
albdrain_holds_total{outcome="draining_settled"} 0
albdrain_holds_total{outcome="fallback"} 1
albdrain_holds_total{outcome="not_registered"} 0
albdrain_holds_total{outcome="quiet"} 1
albdrain_holds_total{outcome="timeout"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "albdrain_holds_total"); err != nil {
		t.Error(err)
	}
	if got := testutil.CollectAndCount(m.HoldDuration); got != 3 {
		t.Errorf("hold duration series = %d, want one per observed outcome (3)", got)
	}
}

func TestObserveELBv2(t *testing.T) {
	m := New()
	m.ObserveELBv2("DescribeTargetHealth", ResultSuccess, 10*time.Millisecond)
	m.ObserveELBv2("DescribeTargetHealth", ResultThrottled, 10*time.Millisecond)
	m.ObserveELBv2("DescribeTargetHealth", ResultThrottled, 10*time.Millisecond)
	m.ObserveELBv2("DescribeTargetGroupAttributes", ResultError, 10*time.Millisecond)

	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"success", testutil.ToFloat64(m.ELBv2Requests.WithLabelValues("DescribeTargetHealth", ResultSuccess)), 1},
		{"throttled", testutil.ToFloat64(m.ELBv2Requests.WithLabelValues("DescribeTargetHealth", ResultThrottled)), 2},
		{"throttles", testutil.ToFloat64(m.ELBv2Throttles.WithLabelValues("DescribeTargetHealth")), 2},
		{"errors", testutil.ToFloat64(m.ELBv2Requests.WithLabelValues("DescribeTargetGroupAttributes", ResultError)), 1},
		{"errors are not throttles", testutil.ToFloat64(m.ELBv2Throttles.WithLabelValues("DescribeTargetGroupAttributes")), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if got := testutil.CollectAndCount(m.ELBv2Latency); got != 2 {
		t.Errorf("latency series = %d, want 2 (one per operation)", got)
	}
}

// Every reason is exported from the start, so alerts on a rate see a series
// before the first refusal.
func TestHoldRefusals(t *testing.T) {
	m := New()
	reg := prometheus.NewPedanticRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	m.HoldRefusals.WithLabelValues(contract.RefusedNoToken).Inc()
	m.HoldRefusals.WithLabelValues(contract.RefusedNoToken).Inc()
	m.HoldRefusals.WithLabelValues(contract.RefusedCapacity).Inc()
	var want strings.Builder
	want.WriteString("# HELP albdrain_hold_requests_refused_total " + "Hold requests and hold-end reports the hold endpoint refused, by reason: wrong_source, no_token, bad_token or wrong_pod (the caller is not the pod it names), review_failed, pod_unreadable, wrong_uid, bad_request, not_terminating, pod_limit or capacity.\n")
	want.WriteString("# TYPE albdrain_hold_requests_refused_total counter\n")
	counts := map[string]int{contract.RefusedNoToken: 2, contract.RefusedCapacity: 1}
	for _, r := range contract.RefusalReasons {
		fmt.Fprintf(&want, "albdrain_hold_requests_refused_total{reason=%q} %d\n", r, counts[r])
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want.String()), "albdrain_hold_requests_refused_total"); err != nil {
		t.Error(err)
	}
}

// TestWatchGroup: each polled target group has one series, named by its
// ARN, for as long as it is polled, beside the replica's count of groups.
func TestWatchGroup(t *testing.T) {
	m := New()
	reg := prometheus.NewPedanticRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	m.WatchGroup("arn:tg/a")
	m.WatchGroup("arn:tg/b")
	m.UnwatchGroup("arn:tg/a")
	m.WatchGroup("arn:tg/c")

	want := `
# HELP albdrain_target_groups_watched Target groups this replica is polling because holds wait on them.
# TYPE albdrain_target_groups_watched gauge
albdrain_target_groups_watched 2
# HELP albdrain_watched_target_group 1 for each target group this replica is polling because holds wait on it, by target_group (its ARN); a group's series goes when its last hold ends. Count distinct target_group across replicas to count each group once.
# TYPE albdrain_watched_target_group gauge
albdrain_watched_target_group{target_group="arn:tg/b"} 1
albdrain_watched_target_group{target_group="arn:tg/c"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "albdrain_target_groups_watched", "albdrain_watched_target_group"); err != nil {
		t.Error(err)
	}
	m.UnwatchGroup("arn:tg/b")
	m.UnwatchGroup("arn:tg/c")
	if got := testutil.CollectAndCount(m.WatchedTargetGroups); got != 0 {
		t.Errorf("%d target-group series left after every group stopped, want 0", got)
	}
}
