// The Batcher batches early deregistrations. A rollout terminates
// many pods of one target group at once; one DeregisterTargets per pod
// would spend the account's change budget, shared with the load balancer
// controller (4/s), on what one call per target group can do. Requests for a
// group that arrive while a call for it is in flight, or waiting for the
// client's rate limit, go out together in the next call.

package elbv2

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// MaxBatch bounds the targets of one DeregisterTargets call.
const MaxBatch = 200

// callTimeout bounds one call, which runs for every hold in its batch and
// so on no hold's context.
const deregisterTimeout = time.Minute

// DeregisterAPI is the part of the ELBv2 client a Batcher uses.
type DeregisterAPI interface {
	DeregisterTargets(ctx context.Context, in *awselbv2.DeregisterTargetsInput, optFns ...func(*awselbv2.Options)) (*awselbv2.DeregisterTargetsOutput, error)
}

// Batcher deregisters targets, one call per target group for every
// request waiting. Its methods are safe for concurrent use.
type Batcher struct {
	API DeregisterAPI

	mu     sync.Mutex
	queues map[string][]request
}

type request struct {
	target Target
	done   chan error
}

// Deregister removes target from the target group arn and returns the
// result of the call that carried it, or ctx's error if ctx ends first (the
// call still goes out for the others in its batch).
func (b *Batcher) Deregister(ctx context.Context, arn string, target Target) error {
	r := request{target: target, done: make(chan error, 1)}
	b.mu.Lock()
	if b.queues == nil {
		b.queues = map[string][]request{}
	}
	q, busy := b.queues[arn]
	b.queues[arn] = append(q, r)
	b.mu.Unlock()
	if !busy {
		go b.run(arn)
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// run sends the group's waiting requests until none is left. A group is
// busy while its key is in the map, so one goroutine per group runs.
func (b *Batcher) run(arn string) {
	for {
		b.mu.Lock()
		q := b.queues[arn]
		if len(q) == 0 {
			delete(b.queues, arn)
			b.mu.Unlock()
			return
		}
		n := min(len(q), MaxBatch)
		batch := q[:n:n]
		b.queues[arn] = q[n:]
		b.mu.Unlock()

		err := b.call(arn, batch)
		for _, r := range batch {
			r.done <- err
		}
	}
}

func (b *Batcher) call(arn string, batch []request) error {
	targets := make([]Target, 0, len(batch))
	for _, r := range batch {
		targets = append(targets, r.target)
	}
	slices.SortFunc(targets, func(a, b Target) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Port, b.Port))
	})
	in := &awselbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn)}
	for _, t := range slices.Compact(targets) {
		in.Targets = append(in.Targets, types.TargetDescription{Id: aws.String(t.ID), Port: aws.Int32(t.Port)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), deregisterTimeout)
	defer cancel()
	_, err := b.API.DeregisterTargets(ctx, in)
	return err
}
