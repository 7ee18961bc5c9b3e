// Package metrics defines the watcher's Prometheus metrics. Every label but
// one has a closed set of values (outcomes, ELBv2 operation names, request
// results); nothing is labelled by pod, so cardinality stays fixed no matter
// how many pods drain. The one exception, WatchedTargetGroups, is labelled by
// target group, and only while holds wait on the group: its series are
// bounded by the target groups with holds, so that a dashboard can count each
// group once across replicas.
package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/albdrain/albdrain/internal/contract"
)

// Results of one ELBv2 request attempt.
const (
	ResultSuccess   = "success"
	ResultThrottled = "throttled"
	ResultError     = "error"
)

// Metrics are the watcher's collectors. Create them with New; a zero
// Metrics is not usable.
type Metrics struct {
	HoldDuration        *prometheus.HistogramVec
	HoldsInFlight       prometheus.Gauge
	Holds               *prometheus.CounterVec
	ELBv2Requests       *prometheus.CounterVec
	ELBv2Latency        *prometheus.HistogramVec
	ELBv2Throttles      *prometheus.CounterVec
	TargetGroupsWatched prometheus.Gauge
	// TargetGroupsWarm counts the target groups of managed pods whose
	// deregistration delay and settings are cached ahead of any hold.
	TargetGroupsWarm prometheus.Gauge
	// WatchedTargetGroups is 1 for each target group this replica polls,
	// labelled by the group's ARN, and has no series for a group nobody
	// waits on: counting distinct groups across replicas counts each once,
	// where summing TargetGroupsWatched counts a group once per replica.
	WatchedTargetGroups *prometheus.GaugeVec
	// SharedPolls counts target-group polls read from the replica that
	// polls the group for all, by result: read, or failed (this replica
	// then polled the group itself).
	SharedPolls *prometheus.CounterVec
	// HoldEndsUnreported counts holds handed to the helper whose end it
	// never reported, so they are in no outcome of Holds.
	HoldEndsUnreported prometheus.Counter
	// HoldRefusals counts hold requests and end reports the hold endpoint
	// refused, by one of contract.RefusalReasons.
	HoldRefusals *prometheus.CounterVec
	// PodsNeverHeld counts managed wait-mode pods that terminated without
	// their helper ever reaching the watcher.
	PodsNeverHeld prometheus.Counter
}

// New creates the collectors, unregistered: the manager registers them
// (package app).
func New() *Metrics {
	m := &Metrics{
		HoldDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "albdrain_hold_duration_seconds",
			Help: "How long the watcher held terminating pods, by outcome.",
			// Holds span from an immediate release to the deregistration delay (up to an hour).
			Buckets: []float64{0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"outcome"}),
		HoldsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "albdrain_holds_in_flight",
			Help: "Holds this replica is serving now.",
		}),
		Holds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "albdrain_holds_total",
			Help: "Holds ended, by outcome: quiet (no load-balancer traffic for the quiet period), bound (traffic until the hold's bound), deregistered, draining_settled, not_registered, timeout or fallback.",
		}, []string{"outcome"}),
		ELBv2Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "albdrain_elbv2_requests_total",
			Help: "ELBv2 API request attempts (retries included), by operation and result: success, throttled or error.",
		}, []string{"operation", "result"}),
		ELBv2Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "albdrain_elbv2_request_duration_seconds",
			Help:    "Latency of ELBv2 API request attempts, by operation.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation"}),
		ELBv2Throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "albdrain_elbv2_throttles_total",
			Help: "ELBv2 API request attempts AWS throttled, by operation.",
		}, []string{"operation"}),
		TargetGroupsWatched: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "albdrain_target_groups_watched",
			Help: "Target groups this replica is polling because holds wait on them.",
		}),
		TargetGroupsWarm: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "albdrain_target_groups_warm",
			Help: "Target groups of running managed pods whose deregistration delay and settings this replica has cached, so that their holds spend no Describe call on them.",
		}),
		WatchedTargetGroups: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "albdrain_watched_target_group",
			Help: "1 for each target group this replica is polling because holds wait on it, by target_group (its ARN); a group's series goes when its last hold ends. Count distinct target_group across replicas to count each group once.",
		}, []string{"target_group"}),
		SharedPolls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "albdrain_shared_polls_total",
			Help: "Target-group polls this replica read from the replica that polls the group for all, by result: read, or failed (it then polled the group itself).",
		}, []string{"result"}),
		HoldEndsUnreported: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "albdrain_hold_ends_unreported_total",
			Help: "Holds handed to the in-pod helper to wait for quiet (outcome deregistering) whose end the helper did not report within the hold's bound and a minute, so albdrain_holds_total misses them (a report arriving later is counted there too).",
		}),
		HoldRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "albdrain_hold_requests_refused_total",
			Help: "Hold requests and hold-end reports the hold endpoint refused, by reason: wrong_source, no_token, bad_token or wrong_pod (the caller is not the pod it names), review_failed, pod_unreadable, wrong_uid, bad_request, not_terminating, pod_limit or capacity.",
		}, []string{"reason"}),
		PodsNeverHeld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "albdrain_pods_terminated_unheld_total",
			Help: "Managed wait-mode pods deleted after their held containers ran with no hold event from any watcher replica: their helper never reached the watcher (egress denied, DNS, TLS trust, a dead watcher) or was refused before a hold began. Every replica counts every pod: use max, not sum.",
		}),
	}
	for _, o := range contract.Outcomes {
		m.Holds.WithLabelValues(string(o))
	}
	for _, r := range contract.RefusalReasons {
		m.HoldRefusals.WithLabelValues(r)
	}
	for _, r := range []string{"read", "failed"} {
		m.SharedPolls.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.HoldDuration, m.HoldsInFlight, m.Holds, m.ELBv2Requests, m.ELBv2Latency, m.ELBv2Throttles, m.TargetGroupsWatched, m.TargetGroupsWarm, m.WatchedTargetGroups, m.SharedPolls, m.HoldEndsUnreported,
		m.HoldRefusals, m.PodsNeverHeld}
}

// Register adds every collector to r.
func (m *Metrics) Register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range m.collectors() {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}

// ObserveHold records an ended hold.
func (m *Metrics) ObserveHold(o contract.Outcome, d time.Duration) {
	m.Holds.WithLabelValues(string(o)).Inc()
	m.HoldDuration.WithLabelValues(string(o)).Observe(d.Seconds())
}

// WatchGroup records that this replica started polling the target group arn.
func (m *Metrics) WatchGroup(arn string) {
	m.TargetGroupsWatched.Inc()
	m.WatchedTargetGroups.WithLabelValues(arn).Set(1)
}

// UnwatchGroup records that this replica stopped polling arn, dropping its
// series so that the label's values stay the groups with holds.
func (m *Metrics) UnwatchGroup(arn string) {
	m.TargetGroupsWatched.Dec()
	m.WatchedTargetGroups.DeleteLabelValues(arn)
}

// ObserveELBv2 records one ELBv2 request attempt.
func (m *Metrics) ObserveELBv2(operation, result string, d time.Duration) {
	m.ELBv2Requests.WithLabelValues(operation, result).Inc()
	m.ELBv2Latency.WithLabelValues(operation).Observe(d.Seconds())
	if result == ResultThrottled {
		m.ELBv2Throttles.WithLabelValues(operation).Inc()
	}
}
