package lbcreact

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/fakelbc"
)

// TestRecorderSeesTargetCalls drives the unmodified SDK through the
// recording proxy to the emulator: each target call is noted with its
// targets and the controller's User-Agent, and still reaches the emulator.
func TestRecorderSeesTargetCalls(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{AllowNonLoopbackTargets: true, DefaultDeregistrationDelay: albemu.Immediate})
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "rec", VpcID: albemu.DefaultVPCID})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := startRecorder(emu.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rec.Close() })
	elb, _ := fakelbc.Clients(rec.URL())
	ctx := t.Context()
	start := time.Now()
	targets := []elbv2types.TargetDescription{{Id: aws.String("10.1.0.1"), Port: aws.Int32(80)}, {Id: aws.String("10.1.0.2"), Port: aws.Int32(80)}}
	if _, err := elb.RegisterTargets(ctx, &awselbv2.RegisterTargetsInput{TargetGroupArn: &arn, Targets: targets}); err != nil {
		t.Fatal(err)
	}
	if _, err := elb.DescribeTargetHealth(ctx, &awselbv2.DescribeTargetHealthInput{TargetGroupArn: &arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := elb.DeregisterTargets(ctx, &awselbv2.DeregisterTargetsInput{TargetGroupArn: &arn, Targets: targets[1:]}); err != nil {
		t.Fatal(err)
	}
	want := []Call{
		{Action: "RegisterTargets", Targets: []string{"10.1.0.1", "10.1.0.2"}, UserAgent: fakelbc.UserAgent},
		{Action: "DeregisterTargets", Targets: []string{"10.1.0.2"}, UserAgent: fakelbc.UserAgent},
	}
	if diff := cmp.Diff(want, rec.Calls(), cmpopts.IgnoreFields(Call{}, "At")); diff != "" {
		t.Errorf("recorded calls (-want +got):\n%s", diff)
	}
	at, err := rec.wait(ctx, "DeregisterTargets", "10.1.0.2", start)
	if err != nil || at.Before(start) {
		t.Errorf("wait for the deregistration = %v, %v; want a time after %v", at, err, start)
	}
	routed, err := emu.RoutingTargets(arn)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]albemu.Target{{ID: "10.1.0.1", Port: 80}}, routed); diff != "" {
		t.Errorf("the emulator's registrations (-want +got):\n%s", diff)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := rec.wait(waitCtx, "DeregisterTargets", "10.1.0.1", start); err == nil {
		t.Error("wait found a deregistration that never happened")
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 20; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	want := Summary{N: 20, Min: time.Millisecond, Median: 10 * time.Millisecond, P90: 18 * time.Millisecond, Max: 20 * time.Millisecond}
	if diff := cmp.Diff(want, Summarize(ds)); diff != "" {
		t.Errorf("Summarize(1..20 ms) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Summary{}, Summarize(nil)); diff != "" {
		t.Errorf("Summarize(nothing) (-want +got):\n%s", diff)
	}
}
