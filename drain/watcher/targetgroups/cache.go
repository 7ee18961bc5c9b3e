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
	if v, ok := c.fresh(arn, maxAge); ok {
		return v, nil
	}
	ch := c.flight.DoChan(arn, func() (any, error) {
		// A lookup that ended between the check above and DoChan has
		// stored its answer already: use it rather than ask again.
		if v, ok := c.fresh(arn, maxAge); ok {
			return v, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		v, err := fetch(fctx)
		if err != nil {
			return v, err
		}
		c.put(arn, v, time.Now())
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

// fresh returns arn's value if it is younger than maxAge.
func (c *ttlCache[T]) fresh(arn string, maxAge time.Duration) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[arn]
	if !ok || time.Since(e.fetched) >= maxAge {
		var zero T
		return zero, false
	}
	return e.v, true
}

// put stores arn's value as fetched at when.
func (c *ttlCache[T]) put(arn string, v T, when time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cached[T]{}
	}
	c.m[arn] = cached[T]{v: v, fetched: when}
}

// prune drops the values fetched before t, which get would fetch again
// anyway: a listing's groups since deleted are not kept for ever.
func (c *ttlCache[T]) prune(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for arn, e := range c.m {
		if e.fetched.Before(t) {
			delete(c.m, arn)
		}
	}
}

// age is how long ago arn's value was fetched; ok is false when none is cached.
func (c *ttlCache[T]) age(arn string) (age time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[arn]
	return time.Since(e.fetched), ok
}
