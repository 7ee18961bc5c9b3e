package targetgroups

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"golang.org/x/time/rate"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// trafficPort is the health-check port that means the target's own port.
const trafficPort = "traffic-port"

// GroupsAPI is the part of the ELBv2 client Settings uses.
type GroupsAPI interface {
	DescribeTargetGroups(ctx context.Context, in *awselbv2.DescribeTargetGroupsInput, optFns ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetGroupsOutput, error)
}

// Setting is what the in-pod helper needs to know of a target group to
// tell its load balancer's traffic from its health checks.
type Setting struct {
	// Protocol is the target group's: HTTP or HTTPS behind an ALB; TCP,
	// TLS, UDP or TCP_UDP behind an NLB.
	Protocol string
	// HealthCheck is nil when health checks are off.
	HealthCheck *HealthCheck
}

// HealthCheck is a target group's health check.
type HealthCheck struct {
	Protocol string
	// Port is a port number, or "traffic-port" for the target's own.
	Port     string
	Path     string
	Interval time.Duration
}

// Flows reports whether the load balancer is an NLB, whose established
// flows go on while draining, so that only new flows are traffic.
func (s Setting) Flows() bool {
	switch s.Protocol {
	case "TCP", "TLS", "UDP", "TCP_UDP":
		return true
	}
	return false
}

// Traffic describes, for the helper, the traffic to the pod's targets;
// settings[i] is targets[i]'s target group's, zero when unknown.
func Traffic(targets []lbc.Registration, settings []Setting) *contract.Traffic {
	t := &contract.Traffic{}
	for i, target := range targets {
		s := settings[i]
		j := slices.IndexFunc(t.Ports, func(p contract.TrafficPort) bool { return p.Port == target.Port })
		if j < 0 {
			t.Ports = append(t.Ports, contract.TrafficPort{Port: target.Port})
			j = len(t.Ports) - 1
		}
		t.Ports[j].Flows = t.Ports[j].Flows || s.Flows()
		hc := s.HealthCheck
		if hc == nil {
			continue
		}
		port := target.Port
		if hc.Port != trafficPort {
			n, err := strconv.ParseUint(hc.Port, 10, 16)
			if err != nil || n == 0 {
				continue
			}
			port = int32(n)
		}
		c := contract.HealthCheck{Port: port, Protocol: hc.Protocol, Path: hc.Path, IntervalMillis: hc.Interval.Milliseconds()}
		if !slices.Contains(t.HealthChecks, c) {
			t.HealthChecks = append(t.HealthChecks, c)
		}
	}
	return t
}

// Settings caches target groups' settings for MaxAge.
type Settings struct {
	API    GroupsAPI
	MaxAge time.Duration

	cache ttlCache[Setting]
}

// Setting returns the target group's setting.
func (s *Settings) Setting(ctx context.Context, arn string) (Setting, error) {
	v, err := s.cache.get(ctx, arn, s.MaxAge, func(ctx context.Context) (Setting, error) {
		out, err := s.API.DescribeTargetGroups(ctx, &awselbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{arn}})
		if err != nil {
			return Setting{}, err
		}
		if len(out.TargetGroups) != 1 {
			return Setting{}, fmt.Errorf("DescribeTargetGroups returned %d target groups", len(out.TargetGroups))
		}
		return settingOf(out.TargetGroups[0]), nil
	})
	if err != nil {
		return Setting{}, fmt.Errorf("settings of %s: %w", arn, err)
	}
	return v, nil
}

// settingOf is what Setting keeps of a described target group.
func settingOf(tg types.TargetGroup) Setting {
	v := Setting{Protocol: string(tg.Protocol)}
	if aws.ToBool(tg.HealthCheckEnabled) {
		v.HealthCheck = &HealthCheck{
			Protocol: string(tg.HealthCheckProtocol),
			Port:     aws.ToString(tg.HealthCheckPort),
			Path:     aws.ToString(tg.HealthCheckPath),
			Interval: time.Duration(aws.ToInt32(tg.HealthCheckIntervalSeconds)) * time.Second,
		}
	}
	return v
}

// listAll stores the settings of every target group the account has in
// the region, a page of up to 400 per call, waiting on pace before each:
// one listing warms a node drain's groups for less than one call each.
func (s *Settings) listAll(ctx context.Context, pace *rate.Limiter) error {
	pages := awselbv2.NewDescribeTargetGroupsPaginator(s.API, &awselbv2.DescribeTargetGroupsInput{PageSize: aws.Int32(400)})
	for pages.HasMorePages() {
		if err := pace.Wait(ctx); err != nil {
			return err
		}
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list target groups: %w", err)
		}
		now := time.Now()
		for _, tg := range page.TargetGroups {
			s.cache.put(aws.ToString(tg.TargetGroupArn), settingOf(tg), now)
		}
	}
	return nil
}
