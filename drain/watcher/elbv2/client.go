// Package elbv2 is the watcher's whole use of ELBv2: its client (this file),
// the poller that shares one DescribeTargetHealth per target group between
// holds (poller.go), and the batcher of early deregistrations
// (deregister.go). They share the target type and one call budget.
//
// The client is the unmodified AWS
// SDK with its standard retryer, a time limit on every call (its retries
// included), a client-side token bucket in front of every request attempt,
// and metrics for each attempt.
//
// The buckets sit inside the SDK's retry loop, so retries spend budget like
// first attempts do: the account's ELBv2 limits are shared with the load
// balancer controller, and a watcher retrying a throttle at full speed would
// starve it.
package elbv2

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/albdrain/albdrain/drain/watcher/metrics"
)

// ClientOptions configure NewClient.
type ClientOptions struct {
	// Endpoint overrides the ELBv2 endpoint (a VPC endpoint, or an emulator).
	Endpoint string
	// Describe limits Describe* attempts; nil means no client-side limit.
	Describe *rate.Limiter
	// Change limits every other operation (RegisterTargets, DeregisterTargets).
	Change *rate.Limiter
	// Metrics receives one observation per attempt; nil records nothing.
	Metrics *metrics.Metrics
	// CallTimeout bounds each call, its retries and its waits for the token
	// bucket included; zero means DefaultCallTimeout. A call that hangs (a
	// black-holed connection, an endpoint that never answers) then fails
	// like any other, so a poll loop moves on and holds reach their
	// fallback instead of waiting on it until their deadline.
	CallTimeout time.Duration
}

// DefaultCallTimeout is ClientOptions.CallTimeout's default: long enough for the
// SDK's three attempts with backoff against a healthy but slow endpoint,
// short enough that FallbackAfter failed polls end well within a hold.
const DefaultCallTimeout = 10 * time.Second

// NewClient returns an ELBv2 client for cfg (credentials, region and retryer as
// the SDK resolved them) with the limits and metrics of o.
func NewClient(cfg aws.Config, o ClientOptions) *elasticloadbalancingv2.Client {
	return elasticloadbalancingv2.NewFromConfig(cfg, func(opts *elasticloadbalancingv2.Options) {
		if o.Endpoint != "" {
			opts.BaseEndpoint = aws.String(o.Endpoint)
		}
		timeout := o.CallTimeout
		if timeout <= 0 {
			timeout = DefaultCallTimeout
		}
		opts.APIOptions = append(opts.APIOptions, func(s *middleware.Stack) error {
			// First in the initialize step, so the limit covers the whole call.
			if err := s.Initialize.Add(callTimeout(timeout), middleware.Before); err != nil {
				return err
			}
			// Inserted after "Retry" in the finalize step, so it runs once per attempt.
			return s.Finalize.Insert(attemptMiddleware{o}, "Retry", middleware.After)
		})
	})
}

// callTimeout bounds a whole call, whatever context its caller passed.
func callTimeout(d time.Duration) middleware.InitializeMiddleware {
	return middleware.InitializeMiddlewareFunc("albdrainCallTimeout", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return next.HandleInitialize(ctx, in)
	})
}

type attemptMiddleware struct{ o ClientOptions }

func (attemptMiddleware) ID() string { return "albdrainAttempt" }

func (m attemptMiddleware) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	op := awsmiddleware.GetOperationName(ctx)
	lim := m.o.Change
	if strings.HasPrefix(op, "Describe") {
		lim = m.o.Describe
	}
	if lim != nil {
		if err := lim.Wait(ctx); err != nil {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, err
		}
	}
	start := time.Now()
	out, md, err := next.HandleFinalize(ctx, in)
	if m.o.Metrics != nil {
		m.o.Metrics.ObserveELBv2(op, attemptResult(err), time.Since(start))
	}
	return out, md, err
}

func attemptResult(err error) string {
	switch {
	case err == nil:
		return metrics.ResultSuccess
	case retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary:
		return metrics.ResultThrottled
	default:
		return metrics.ResultError
	}
}
