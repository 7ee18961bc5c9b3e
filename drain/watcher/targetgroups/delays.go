package targetgroups

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// AttrDeregistrationDelay is the target-group attribute holding the deregistration delay.
const AttrDeregistrationDelay = "deregistration_delay.timeout_seconds"

// AttributesAPI is the part of the ELBv2 client Delays uses.
type AttributesAPI interface {
	DescribeTargetGroupAttributes(ctx context.Context, in *awselbv2.DescribeTargetGroupAttributesInput, optFns ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetGroupAttributesOutput, error)
}

// Delays caches target groups' deregistration delays for MaxAge.
type Delays struct {
	API    AttributesAPI
	MaxAge time.Duration

	cache ttlCache[time.Duration]
}

// DeregistrationDelay returns how long the target group keeps deregistered
// targets draining.
func (d *Delays) DeregistrationDelay(ctx context.Context, arn string) (time.Duration, error) {
	return d.delay(ctx, arn, d.MaxAge)
}

// delay is arn's deregistration delay, fetched when the cached one is
// older than maxAge.
func (d *Delays) delay(ctx context.Context, arn string, maxAge time.Duration) (time.Duration, error) {
	delay, err := d.cache.get(ctx, arn, maxAge, func(ctx context.Context) (time.Duration, error) {
		out, err := d.API.DescribeTargetGroupAttributes(ctx, &awselbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(arn)})
		if err != nil {
			return 0, err
		}
		for _, a := range out.Attributes {
			if aws.ToString(a.Key) != AttrDeregistrationDelay {
				continue
			}
			secs, err := strconv.Atoi(aws.ToString(a.Value))
			if err != nil {
				return 0, fmt.Errorf("%s=%q: %w", AttrDeregistrationDelay, aws.ToString(a.Value), err)
			}
			return time.Duration(secs) * time.Second, nil
		}
		return 0, fmt.Errorf("target group %s has no %s attribute", arn, AttrDeregistrationDelay)
	})
	if err != nil {
		return 0, fmt.Errorf("deregistration delay of %s: %w", arn, err)
	}
	return delay, nil
}
