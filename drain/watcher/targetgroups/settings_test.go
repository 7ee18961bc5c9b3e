package targetgroups

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

func TestTraffic(t *testing.T) {
	alb := Setting{Protocol: "HTTP", HealthCheck: &HealthCheck{Protocol: "HTTP", Port: "traffic-port", Path: "/healthz", Interval: 5 * time.Second}}
	nlb := Setting{Protocol: "TCP", HealthCheck: &HealthCheck{Protocol: "TCP", Port: "9000", Interval: 10 * time.Second}}
	tests := []struct {
		name     string
		targets  []lbc.Registration
		settings []Setting
		want     *contract.Traffic
	}{{
		name:     "ALB checking the traffic port",
		targets:  []lbc.Registration{{TargetGroupARN: "a", Port: 8080}},
		settings: []Setting{alb},
		want: &contract.Traffic{
			Ports:        []contract.TrafficPort{{Port: 8080}},
			HealthChecks: []contract.HealthCheck{{Port: 8080, Protocol: "HTTP", Path: "/healthz", IntervalMillis: 5000}},
		},
	}, {
		name:     "NLB checking another port",
		targets:  []lbc.Registration{{TargetGroupARN: "n", Port: 8443}},
		settings: []Setting{nlb},
		want: &contract.Traffic{
			Ports:        []contract.TrafficPort{{Port: 8443, Flows: true}},
			HealthChecks: []contract.HealthCheck{{Port: 9000, Protocol: "TCP", IntervalMillis: 10000}},
		},
	}, {
		name:     "an ALB and an NLB on one port: flows, both checks",
		targets:  []lbc.Registration{{TargetGroupARN: "a", Port: 8080}, {TargetGroupARN: "n", Port: 8080}, {TargetGroupARN: "a2", Port: 8080}},
		settings: []Setting{alb, nlb, alb},
		want: &contract.Traffic{
			Ports: []contract.TrafficPort{{Port: 8080, Flows: true}},
			HealthChecks: []contract.HealthCheck{
				{Port: 8080, Protocol: "HTTP", Path: "/healthz", IntervalMillis: 5000},
				{Port: 9000, Protocol: "TCP", IntervalMillis: 10000},
			},
		},
	}, {
		name:     "unknown settings and checks off",
		targets:  []lbc.Registration{{TargetGroupARN: "x", Port: 80}, {TargetGroupARN: "y", Port: 81}},
		settings: []Setting{{}, {Protocol: "HTTPS"}},
		want:     &contract.Traffic{Ports: []contract.TrafficPort{{Port: 80}, {Port: 81}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, Traffic(tt.targets, tt.settings)); d != "" {
				t.Errorf("Traffic (-want +got):\n%s", d)
			}
		})
	}
}
