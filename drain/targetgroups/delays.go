package targetgroups

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"golang.org/x/sync/singleflight"
)

// AttrDeregistrationDelay is the target-group attribute holding the deregistration delay.
const AttrDeregistrationDelay = "deregistration_delay.timeout_seconds"

// AttributesAPI is the part of the ELBv2 client Delays uses.
type AttributesAPI interface {
	DescribeTargetGroupAttributes(ctx context.Context, in *elbv2.DescribeTargetGroupAttributesInput, optFns ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupAttributesOutput, error)
}

// lookupTimeout bounds a shared ELBv2 lookup, which no single hold's
// context ends; the SDK's retries fit well within it.
const lookupTimeout = time.Minute

// Delays caches target groups' deregistration delays for MaxAge. Holds
// asking about the same group at once share one request, as a rollout's
// pods do.
type Delays struct {
	API    AttributesAPI
	MaxAge time.Duration

	flight singleflight.Group
	mu     sync.Mutex
	cache  map[string]cachedDelay
}

type cachedDelay struct {
	delay   time.Duration
	fetched time.Time
}

// DeregistrationDelay returns how long the target group keeps deregistered
// targets draining.
func (d *Delays) DeregistrationDelay(ctx context.Context, arn string) (time.Duration, error) {
	d.mu.Lock()
	c, ok := d.cache[arn]
	d.mu.Unlock()
	if ok && time.Since(c.fetched) < d.MaxAge {
		return c.delay, nil
	}
	// The request runs on a context of its own: holds joining it must not
	// lose their answer when the hold that started it ends.
	ch := d.flight.DoChan(arn, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		return d.fetch(rctx, arn)
	})
	var v any
	var err error
	select {
	case r := <-ch:
		v, err = r.Val, r.Err
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("deregistration delay of %s: %w", arn, err)
	}
	return v.(time.Duration), nil
}

func (d *Delays) fetch(ctx context.Context, arn string) (any, error) {
	out, err := d.API.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(arn)})
	if err != nil {
		return nil, err
	}
	for _, a := range out.Attributes {
		if aws.ToString(a.Key) != AttrDeregistrationDelay {
			continue
		}
		secs, err := strconv.Atoi(aws.ToString(a.Value))
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %w", AttrDeregistrationDelay, aws.ToString(a.Value), err)
		}
		delay := time.Duration(secs) * time.Second
		d.mu.Lock()
		if d.cache == nil {
			d.cache = map[string]cachedDelay{}
		}
		d.cache[arn] = cachedDelay{delay: delay, fetched: time.Now()}
		d.mu.Unlock()
		return delay, nil
	}
	return nil, fmt.Errorf("target group %s has no %s attribute", arn, AttrDeregistrationDelay)
}
