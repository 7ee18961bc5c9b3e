package elbv2

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/albdrain/albdrain/drain/watcher/metrics"
)

// drainingAPI answers at once that every target asked about is draining,
// with one answer per target group built on first use, so the benchmark
// measures the poller rather than the fake.
type drainingAPI struct {
	calls   atomic.Int64
	mu      sync.Mutex
	answers map[string]*awselbv2.DescribeTargetHealthOutput
}

func (f *drainingAPI) DescribeTargetHealth(_ context.Context, in *awselbv2.DescribeTargetHealthInput, _ ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetHealthOutput, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	arn := aws.ToString(in.TargetGroupArn)
	if out, ok := f.answers[arn]; ok && len(out.TargetHealthDescriptions) == len(in.Targets) {
		return out, nil
	}
	out := &awselbv2.DescribeTargetHealthOutput{}
	for _, t := range in.Targets {
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, types.TargetHealthDescription{
			Target:       &types.TargetDescription{Id: t.Id, Port: t.Port},
			TargetHealth: &types.TargetHealth{State: types.TargetHealthStateEnumDraining, Reason: types.TargetHealthReasonEnumDeregistrationInProgress},
		})
	}
	f.answers[arn] = out
	return out, nil
}

// BenchmarkPollRound measures the watcher's work in one poll interval with
// 1,000 held pods across 50 target groups: one DescribeTargetHealth per
// group naming its 20 targets, and each answer handed to its hold. It
// reports the calls a round makes beside one per held pod. The groups are
// built directly, without their loops, so the benchmark alone drives the
// rounds.
func BenchmarkPollRound(b *testing.B) {
	const groups, pods = 50, 1000
	api := &drainingAPI{answers: map[string]*awselbv2.DescribeTargetHealthOutput{}}
	p := NewPoller(api, time.Hour, metrics.New())
	gs := make([]*group, groups)
	for g := range gs {
		gs[g] = &group{arn: fmt.Sprintf("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/g-%d/0123456789abcdef", g),
			subs: map[*subscription]struct{}{}}
	}
	for i := range pods {
		s := &subscription{target: Target{ID: fmt.Sprintf("10.0.%d.%d", i/250, i%250), Port: 8080}, ch: make(chan Report, 1)}
		gs[i%groups].subs[s] = struct{}{}
	}
	ctx := context.Background()
	rounds := 0
	b.ReportAllocs()
	for b.Loop() {
		for _, g := range gs {
			p.poll(ctx, g)
		}
		rounds++
	}
	b.ReportMetric(float64(api.calls.Load())/float64(rounds), "calls/round")
	b.ReportMetric(pods, "naive-calls/round")
}
