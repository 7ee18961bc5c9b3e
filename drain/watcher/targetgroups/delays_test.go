package targetgroups

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// gatedAttributes answers DescribeTargetGroupAttributes once release is
// closed, or fails with the request's context if that ends first.
type gatedAttributes struct {
	started chan struct{}
	release chan struct{}
}

func (g *gatedAttributes) DescribeTargetGroupAttributes(ctx context.Context, _ *awselbv2.DescribeTargetGroupAttributesInput, _ ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetGroupAttributesOutput, error) {
	g.started <- struct{}{}
	select {
	case <-g.release:
		return &awselbv2.DescribeTargetGroupAttributesOutput{Attributes: []types.TargetGroupAttribute{
			{Key: aws.String(AttrDeregistrationDelay), Value: aws.String("45")},
		}}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestDelayOutlivesTheFirstCaller checks that a hold joining a lookup keeps
// its answer when the hold that started the lookup goes away.
func TestDelayOutlivesTheFirstCaller(t *testing.T) {
	api := &gatedAttributes{started: make(chan struct{}, 2), release: make(chan struct{})}
	d := &Delays{API: api, MaxAge: time.Minute}
	const arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1"

	firstCtx, endFirst := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := d.DeregistrationDelay(firstCtx, arn)
		first <- err
	}()
	<-api.started
	type answer struct {
		delay time.Duration
		err   error
	}
	second := make(chan answer, 1)
	go func() {
		delay, err := d.DeregistrationDelay(context.Background(), arn)
		second <- answer{delay, err}
	}()
	endFirst()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: %v, want its own cancellation", err)
	}
	close(api.release)
	got := <-second
	if got.err != nil || got.delay != 45*time.Second {
		t.Fatalf("second caller got %v, %v; want 45s", got.delay, got.err)
	}
	if len(api.started) != 0 {
		t.Errorf("%d more lookups, want the second caller to join the first", len(api.started))
	}
}
