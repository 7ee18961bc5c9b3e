package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/e2e/albemu"
)

func awsConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = time.Millisecond })
		},
	}
}

func TestEveryAttemptIsMeasured(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	c := elbv2.NewClient(awsConfig(), elbv2.ClientOptions{Endpoint: emu.URL(), Metrics: m})
	ctx := context.Background()
	in := &awselbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)}

	if _, err := c.DescribeTargetHealth(ctx, in); err != nil {
		t.Fatal(err)
	}
	emu.SetActionFaults("DescribeTargetHealth", albemu.Faults{ThrottleFraction: 1})
	if _, err := c.DescribeTargetHealth(ctx, in); err == nil {
		t.Fatal("throttled call succeeded")
	}

	const op = "DescribeTargetHealth"
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"successes", testutil.ToFloat64(m.ELBv2Requests.WithLabelValues(op, metrics.ResultSuccess)), 1},
		// The SDK's standard retryer makes 3 attempts; each is counted.
		{"throttled attempts", testutil.ToFloat64(m.ELBv2Requests.WithLabelValues(op, metrics.ResultThrottled)), 3},
		{"throttles", testutil.ToFloat64(m.ELBv2Throttles.WithLabelValues(op)), 3},
		{"errors", testutil.ToFloat64(m.ELBv2Requests.WithLabelValues(op, metrics.ResultError)), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := emu.CallCount(op); n != 4 {
		t.Errorf("emulator saw %d calls, want 4", n)
	}
}

func TestMissingGroupIsAnError(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	m := metrics.New()
	c := elbv2.NewClient(awsConfig(), elbv2.ClientOptions{Endpoint: emu.URL(), Metrics: m})
	_, err := c.DescribeTargetHealth(context.Background(), &awselbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/none/0")})
	var nf *types.TargetGroupNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v, want TargetGroupNotFound", err)
	}
	if got := testutil.ToFloat64(m.ELBv2Requests.WithLabelValues("DescribeTargetHealth", metrics.ResultError)); got != 1 {
		t.Errorf("errors = %v, want 1", got)
	}
}

func TestBucketsLimitAttempts(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	// One token, never refilled within the test.
	c := elbv2.NewClient(awsConfig(), elbv2.ClientOptions{Endpoint: emu.URL(), Describe: rate.NewLimiter(rate.Every(time.Hour), 1)})
	in := &awselbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)}
	if _, err := c.DescribeTargetHealth(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.DescribeTargetHealth(ctx, in); err == nil {
		t.Error("a call beyond the bucket went through")
	}
	if n := emu.CallCount("DescribeTargetHealth"); n != 1 {
		t.Errorf("emulator saw %d calls, want 1", n)
	}
	// Other operations draw on the other bucket (unlimited here).
	if _, err := c.DeregisterTargets(context.Background(), &awselbv2.DeregisterTargetsInput{
		TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{{Id: aws.String("127.0.0.9")}},
	}); err != nil {
		t.Errorf("DeregisterTargets: %v", err)
	}
}

// A DescribeTargetHealth that never answers (the emulator's latency fault,
// far beyond any test) must fail within the client's call timeout, so that
// the poller reports it to the holds and polls again instead of waiting on
// it: without the bound the poll loop of that target group stops, and
// every hold on the group runs to its deadline without reaching its
// fallback.
func TestHungCallIsBounded(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	emu.SetFaults(albemu.Faults{Latency: time.Hour})
	m := metrics.New()
	c := elbv2.NewClient(awsConfig(), elbv2.ClientOptions{Endpoint: emu.URL(), Metrics: m, CallTimeout: 200 * time.Millisecond})
	p := elbv2.NewPoller(c, 10*time.Millisecond, m)
	reports, stop := p.Subscribe(arn, elbv2.Target{ID: "10.0.0.1", Port: 8080})
	defer stop()
	// Two failed polls in a row: the loop went on after the first hung call.
	for i := range 2 {
		if r := <-reports; r.Err == nil {
			t.Fatalf("poll %d under a hung API: %+v, want an error", i, r)
		}
	}
}
