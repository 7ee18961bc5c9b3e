package albemu

import (
	"slices"
	"time"
)

// RequestRecord is one request a listener handled.
type RequestRecord struct {
	Time           time.Time // when the request arrived
	Listener       string    // listener address
	Node           int       // the ALB node that routed it
	TargetGroupArn string
	Method, Path   string
	Target         string // "ip:port", empty when none was chosen
	Status         int    // status the client got (460: the client went away)
	Duration       time.Duration
	Err            string // why the emulator answered 5xx, or the body was cut
}

func (e *Emulator) recordRequest(r RequestRecord) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = appendCapped(e.requests, r)
	e.notifyLocked()
}

// Requests returns a copy of the request log, oldest first.
func (e *Emulator) Requests() []RequestRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.requests)
}

// ResetRequests empties the request log.
func (e *Emulator) ResetRequests() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = nil
}
