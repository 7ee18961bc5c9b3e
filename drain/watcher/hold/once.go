package hold

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/albdrain/albdrain/internal/contract"
)

// countedFor is how long a pod's counted outcome is remembered: longer than
// any hold (contract.MaxHoldTimeout) and the slack of its end report.
const countedFor = contract.MaxHoldTimeout + 10*time.Minute

// counted remembers, per pod UID, that an outcome was counted on this
// replica, so that a pod's outcome is counted (metric and event) once
// whatever reaches the replica after it: an end report after a timeout the
// watcher counted, a second report, a retried hold after an answer the
// helper never read.
type counted struct {
	mu   sync.Mutex
	uids map[types.UID]time.Time
}

// first records uid's outcome at now and reports whether it is the first
// one; it forgets outcomes older than countedFor.
func (c *counted) first(uid types.UID, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.uids == nil {
		c.uids = map[types.UID]time.Time{}
	}
	if at, ok := c.uids[uid]; ok && now.Sub(at) < countedFor {
		return false
	}
	for u, at := range c.uids {
		if now.Sub(at) >= countedFor {
			delete(c.uids, u)
		}
	}
	c.uids[uid] = now
	return true
}
