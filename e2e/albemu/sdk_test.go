package albemu_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/albdrain/albdrain/e2e/albemu"
)

func TestSDKTargetGroupOperations(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	emu := albemu.NewForTest(t, albemu.Options{})
	client := newClient(t, emu, 1, nil)

	created, err := client.CreateTargetGroup(ctx, &awselbv2.CreateTargetGroupInput{
		Name:       aws.String("k8s-shop-web"),
		Protocol:   types.ProtocolEnumHttp,
		Port:       aws.Int32(8080),
		VpcId:      aws.String("vpc-123"),
		TargetType: types.TargetTypeEnumIp,
		Tags: []types.Tag{
			{Key: aws.String("elbv2.k8s.aws/cluster"), Value: aws.String("demo")},
			{Key: aws.String("ingress.k8s.aws/stack"), Value: aws.String("shop/web")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tg := created.TargetGroups[0]
	arn := aws.ToString(tg.TargetGroupArn)
	if aws.ToInt32(tg.Port) != 8080 || tg.TargetType != types.TargetTypeEnumIp ||
		aws.ToInt32(tg.HealthCheckIntervalSeconds) != 30 || aws.ToInt32(tg.HealthyThresholdCount) != 5 ||
		aws.ToString(tg.Matcher.HttpCode) != "200" || aws.ToString(tg.HealthCheckPath) != "/" {
		t.Fatalf("created %+v, want port 8080, ip, AWS health-check defaults", tg)
	}

	byName, err := client.DescribeTargetGroups(ctx, &awselbv2.DescribeTargetGroupsInput{Names: []string{"k8s-shop-web"}})
	if err != nil || len(byName.TargetGroups) != 1 || aws.ToString(byName.TargetGroups[0].TargetGroupArn) != arn {
		t.Fatalf("describe by name: %+v, %v", byName, err)
	}

	tags, err := client.DescribeTags(ctx, &awselbv2.DescribeTagsInput{ResourceArns: []string{arn}})
	if err != nil {
		t.Fatal(err)
	}
	gotTags := map[string]string{}
	for _, tag := range tags.TagDescriptions[0].Tags {
		gotTags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	if gotTags["elbv2.k8s.aws/cluster"] != "demo" || gotTags["ingress.k8s.aws/stack"] != "shop/web" {
		t.Fatalf("tags %v", gotTags)
	}

	if got := deregistrationDelay(t, client, arn); got != "300" {
		t.Fatalf("default deregistration delay %q, want 300", got)
	}
	if _, err := client.ModifyTargetGroupAttributes(ctx, &awselbv2.ModifyTargetGroupAttributesInput{
		TargetGroupArn: aws.String(arn),
		Attributes:     []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("45")}},
	}); err != nil {
		t.Fatal(err)
	}
	if got := deregistrationDelay(t, client, arn); got != "45" {
		t.Fatalf("deregistration delay %q after modify, want 45", got)
	}

	modified, err := client.ModifyTargetGroup(ctx, &awselbv2.ModifyTargetGroupInput{
		TargetGroupArn:             aws.String(arn),
		HealthCheckPath:            aws.String("/ready"),
		HealthCheckIntervalSeconds: aws.Int32(10),
		UnhealthyThresholdCount:    aws.Int32(3),
		Matcher:                    &types.Matcher{HttpCode: aws.String("200-299")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := modified.TargetGroups[0]; aws.ToString(m.HealthCheckPath) != "/ready" || aws.ToInt32(m.HealthCheckIntervalSeconds) != 10 ||
		aws.ToInt32(m.UnhealthyThresholdCount) != 3 || aws.ToString(m.Matcher.HttpCode) != "200-299" {
		t.Fatalf("modified %+v", m)
	}
}

func deregistrationDelay(t *testing.T, client *awselbv2.Client, arn string) string {
	t.Helper()
	out, err := client.DescribeTargetGroupAttributes(t.Context(), &awselbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range out.Attributes {
		if aws.ToString(a.Key) == "deregistration_delay.timeout_seconds" {
			return aws.ToString(a.Value)
		}
	}
	t.Fatalf("no deregistration delay in %+v", out.Attributes)
	return ""
}

func TestSDKTargetRegistrationAndHealth(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	emu := albemu.NewForTest(t, albemu.Options{})
	client := newClient(t, emu, 1, nil)
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "web", Port: 8080, HealthCheck: fastHealth, DeregistrationDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a, b := startTarget(t, "127.0.0.30"), startTarget(t, "127.0.0.31")

	if _, err := client.RegisterTargets(ctx, &awselbv2.RegisterTargetsInput{
		TargetGroupArn: aws.String(arn),
		Targets:        []types.TargetDescription{sdkTarget(a.Target), sdkTarget(b.Target)},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tg := range []*target{a, b} {
		if err := emu.WaitTargetState(ctx, arn, tg.Target, albemu.StateHealthy); err != nil {
			t.Fatal(err)
		}
	}
	all, err := client.DescribeTargetHealth(ctx, &awselbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.TargetHealthDescriptions) != 2 {
		t.Fatalf("got %d targets, want 2", len(all.TargetHealthDescriptions))
	}
	for _, d := range all.TargetHealthDescriptions {
		h := d.TargetHealth
		if h.State != types.TargetHealthStateEnumHealthy || h.Reason != "" || h.Description != nil {
			t.Fatalf("healthy target reported as %+v, want no reason or description", h)
		}
		if aws.ToString(d.HealthCheckPort) != fmt.Sprint(aws.ToInt32(d.Target.Port)) {
			t.Fatalf("health-check port %q for target port %d, want traffic-port resolved", aws.ToString(d.HealthCheckPort), aws.ToInt32(d.Target.Port))
		}
	}

	// Deregistering a target that was never registered succeeds.
	if _, err := client.DeregisterTargets(ctx, &awselbv2.DeregisterTargetsInput{
		TargetGroupArn: aws.String(arn),
		Targets:        []types.TargetDescription{sdkTarget(a.Target), {Id: aws.String("127.0.0.77")}},
	}); err != nil {
		t.Fatal(err)
	}
	asked, err := client.DescribeTargetHealth(ctx, &awselbv2.DescribeTargetHealthInput{
		TargetGroupArn: aws.String(arn),
		Targets:        []types.TargetDescription{sdkTarget(a.Target), {Id: aws.String("127.0.0.77")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	draining, unknown := asked.TargetHealthDescriptions[0], asked.TargetHealthDescriptions[1]
	if draining.TargetHealth.State != types.TargetHealthStateEnumDraining ||
		draining.TargetHealth.Reason != types.TargetHealthReasonEnumDeregistrationInProgress {
		t.Fatalf("deregistered target %+v, want draining", draining.TargetHealth)
	}
	if unknown.TargetHealth.State != types.TargetHealthStateEnumUnused ||
		unknown.TargetHealth.Reason != types.TargetHealthReasonEnumNotRegistered ||
		aws.ToInt32(unknown.Target.Port) != 8080 {
		t.Fatalf("unknown target %+v on port %d, want unused/Target.NotRegistered on the group port", unknown.TargetHealth, aws.ToInt32(unknown.Target.Port))
	}
}

func sdkTarget(t albemu.Target) types.TargetDescription {
	return types.TargetDescription{Id: aws.String(t.ID), Port: aws.Int32(t.Port)}
}

func TestSDKPaging(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	emu := albemu.NewForTest(t, albemu.Options{})
	client := newClient(t, emu, 1, nil)
	const lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/1"
	var want []string
	for i := range 7 {
		spec := albemu.TargetGroupSpec{Name: fmt.Sprintf("tg-%d", i)}
		if i%2 == 0 {
			spec.LoadBalancerArns = []string{lb}
		}
		arn, err := emu.CreateTargetGroup(spec)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, arn)
	}

	var got []string
	pages := 0
	p := awselbv2.NewDescribeTargetGroupsPaginator(client, &awselbv2.DescribeTargetGroupsInput{PageSize: aws.Int32(3)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tg := range page.TargetGroups {
			got = append(got, aws.ToString(tg.TargetGroupArn))
		}
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Fatalf("%d pages with %v, want 3 pages with %v", pages, got, want)
	}

	byLB, err := client.DescribeTargetGroups(ctx, &awselbv2.DescribeTargetGroupsInput{LoadBalancerArn: aws.String(lb)})
	if err != nil || len(byLB.TargetGroups) != 4 || byLB.NextMarker != nil {
		t.Fatalf("by load balancer: %d groups, marker %v, %v; want 4 and no marker", len(byLB.TargetGroups), byLB.NextMarker, err)
	}
}

func TestSDKErrorsAreTyped(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	emu := albemu.NewForTest(t, albemu.Options{MaxTargetsPerGroup: 2})
	client := newClient(t, emu, 1, nil)
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "web", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	missing := "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gone/0123456789abcdef"
	manyArns := make([]string, 21)
	for i := range manyArns {
		manyArns[i] = arn
	}
	targets := func(ids ...string) []types.TargetDescription {
		var out []types.TargetDescription
		for _, id := range ids {
			out = append(out, types.TargetDescription{Id: aws.String(id)})
		}
		return out
	}

	tests := []struct {
		name     string
		call     func() error
		wantCode string
		wantType any
	}{
		{
			name: "unknown target group",
			call: func() error {
				_, err := client.DescribeTargetHealth(ctx, &awselbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(missing)})
				return err
			},
			wantCode: "TargetGroupNotFound", wantType: new(*types.TargetGroupNotFoundException),
		},
		{
			name: "unknown name",
			call: func() error {
				_, err := client.DescribeTargetGroups(ctx, &awselbv2.DescribeTargetGroupsInput{Names: []string{"nope"}})
				return err
			},
			wantCode: "TargetGroupNotFound", wantType: new(*types.TargetGroupNotFoundException),
		},
		{
			name: "non-loopback target",
			call: func() error {
				_, err := client.RegisterTargets(ctx, &awselbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: targets("10.1.2.3")})
				return err
			},
			wantCode: "InvalidTarget", wantType: new(*types.InvalidTargetException),
		},
		{
			name: "not an IP",
			call: func() error {
				_, err := client.RegisterTargets(ctx, &awselbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: targets("i-0123456789")})
				return err
			},
			wantCode: "InvalidTarget", wantType: new(*types.InvalidTargetException),
		},
		{
			name: "too many targets",
			call: func() error {
				_, err := client.RegisterTargets(ctx, &awselbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: targets("127.0.0.40", "127.0.0.41", "127.0.0.42")})
				return err
			},
			wantCode: "TooManyTargets", wantType: new(*types.TooManyTargetsException),
		},
		{
			name: "duplicate name with other settings",
			call: func() error {
				_, err := client.CreateTargetGroup(ctx, &awselbv2.CreateTargetGroupInput{Name: aws.String("web"), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(9090)})
				return err
			},
			wantCode: "DuplicateTargetGroupName", wantType: new(*types.DuplicateTargetGroupNameException),
		},
		{
			name: "deregistration delay out of range",
			call: func() error {
				_, err := client.ModifyTargetGroupAttributes(ctx, &awselbv2.ModifyTargetGroupAttributesInput{
					TargetGroupArn: aws.String(arn),
					Attributes:     []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("3601")}},
				})
				return err
			},
			wantCode: "ValidationError",
		},
		{
			name: "unknown attribute",
			call: func() error {
				_, err := client.ModifyTargetGroupAttributes(ctx, &awselbv2.ModifyTargetGroupAttributesInput{
					TargetGroupArn: aws.String(arn),
					Attributes:     []types.TargetGroupAttribute{{Key: aws.String("no.such.key"), Value: aws.String("1")}},
				})
				return err
			},
			wantCode: "ValidationError",
		},
		{
			name: "more than 20 tag resources",
			call: func() error {
				_, err := client.DescribeTags(ctx, &awselbv2.DescribeTagsInput{ResourceArns: manyArns})
				return err
			},
			wantCode: "ValidationError",
		},
		{
			name: "bad marker",
			call: func() error {
				_, err := client.DescribeTargetGroups(ctx, &awselbv2.DescribeTargetGroupsInput{Marker: aws.String("garbage")})
				return err
			},
			wantCode: "ValidationError",
		},
		{
			name: "two filters",
			call: func() error {
				_, err := client.DescribeTargetGroups(ctx, &awselbv2.DescribeTargetGroupsInput{Names: []string{"web"}, TargetGroupArns: []string{arn}})
				return err
			},
			wantCode: "ValidationError",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := errorCode(err); got != tc.wantCode {
				t.Fatalf("error code %q (%v), want %q", got, err, tc.wantCode)
			}
			if tc.wantType != nil && !errors.As(err, tc.wantType) {
				t.Fatalf("error %T does not unwrap to %T", err, tc.wantType)
			}
		})
	}
}
