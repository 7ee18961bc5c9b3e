package targetgroups

import (
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

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
// Errors are not cached.
func (c *ttlCache[T]) get(arn string, maxAge time.Duration, fetch func() (T, error)) (T, error) {
	c.mu.Lock()
	e, ok := c.m[arn]
	c.mu.Unlock()
	if ok && time.Since(e.fetched) < maxAge {
		return e.v, nil
	}
	v, err, _ := c.flight.Do(arn, func() (any, error) {
		v, err := fetch()
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
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}
