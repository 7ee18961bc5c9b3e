package albemu

import (
	"slices"
	"time"
)

// Call is one control-plane API call.
type Call struct {
	Time       time.Time
	Action     string
	RemoteAddr string
	UserAgent  string
	RequestID  string
	Status     int    // HTTP status answered; 0 when the connection was dropped
	ErrorCode  string // empty on success
}

func (e *Emulator) recordCall(c Call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = appendCapped(e.calls, c)
	e.notifyLocked()
}

// maxLogEntries bounds each log so a long-running standalone emulator
// does not grow without end; the oldest tenth goes when it is full.
const maxLogEntries = 100_000

func appendCapped[T any](log []T, v T) []T {
	if len(log) >= maxLogEntries {
		log = slices.Delete(log, 0, maxLogEntries/10)
	}
	return append(log, v)
}

// Calls returns a copy of the call log, oldest first.
func (e *Emulator) Calls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

// CallCount counts recorded calls of action, whatever their outcome; an
// SDK call that was retried counts once per attempt.
func (e *Emulator) CallCount(action string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.calls {
		if c.Action == action {
			n++
		}
	}
	return n
}

// ResetCalls empties the call log.
func (e *Emulator) ResetCalls() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = nil
}
