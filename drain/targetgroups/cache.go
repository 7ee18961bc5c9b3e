package targetgroups

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// lookupTimeout bounds a shared ELBv2 lookup, which no single hold's
// context ends; the SDK's retries fit well within it.
const lookupTimeout = time.Minute

// ttlCache keeps one value per target group for maxAge. Holds asking about
// the same group at once share one request, as a rollout's pods do.
type ttlCache[T any] struct {
	flight singleflight.Group
	mu     sync.Mutex
	m      map[string]cached[T]
}

type cached[T any] struct {
	v       T
	fetched time.Time
}

// get returns arn's value, fetching it when missing or older than maxAge.
// Errors are not cached. The fetch runs on a context of its own, bounded by
// lookupTimeout: holds joining it must not lose their answer when the hold
// that started it ends, while each caller still leaves when its own ctx does.
func (c *ttlCache[T]) get(ctx context.Context, arn string, maxAge time.Duration, fetch func(context.Context) (T, error)) (T, error) {
	var zero T
	c.mu.Lock()
	e, ok := c.m[arn]
	c.mu.Unlock()
	if ok && time.Since(e.fetched) < maxAge {
		return e.v, nil
	}
	ch := c.flight.DoChan(arn, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		v, err := fetch(fctx)
		if err != nil {
			return v, err
		}
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]cached[T]{}
		}
		c.m[arn] = cached[T]{v: v, fetched: time.Now()}
		c.mu.Unlock()
		return v, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		return zero, context.Cause(ctx)
	}
}
