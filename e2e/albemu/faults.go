package albemu

import (
	"math/rand/v2"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Outage makes the whole API (or one action) unavailable.
type Outage int

const (
	// OutageNone is normal service.
	OutageNone Outage = iota
	// OutageUnavailable answers 503 ServiceUnavailable.
	OutageUnavailable
	// OutageDrop closes the connection without answering.
	OutageDrop
)

// Faults are injected into API calls. The zero value injects nothing.
// They are checked in this order: Latency, Outage, the rate limit,
// ThrottleFraction, ErrorFraction.
type Faults struct {
	// ThrottleFraction of calls get 400 Throttling "Rate exceeded".
	ThrottleFraction float64
	// RatePerSecond and Burst, when RatePerSecond > 0, apply a token bucket
	// like AWS's account limits; calls over it are throttled. Burst is at
	// least 1.
	RatePerSecond float64
	Burst         int
	// ErrorFraction of calls get ErrorCode: CodeInternalFailure (500, also
	// used for any other value) or CodeServiceUnavailable (503).
	ErrorFraction float64
	ErrorCode     string
	// Latency is added before each call is answered.
	Latency time.Duration
	Outage  Outage
	// Denied answers every call AccessDenied (EC2: UnauthorizedOperation),
	// as AWS does when the caller's IAM policy lacks the action.
	Denied bool
	// UserAgent, when set, limits the faults to calls whose User-Agent
	// contains it: one client's, such as "app/albdrain".
	UserAgent string
}

// faultState is Faults in force, with the token bucket they imply. It is
// replaced, never changed, so callers may use it after unlocking.
type faultState struct {
	Faults
	limiter *rate.Limiter
}

func newFaultState(f Faults) *faultState {
	s := &faultState{Faults: f}
	if f.RatePerSecond > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(f.RatePerSecond), max(f.Burst, 1))
	}
	return s
}

// faultConfig is every fault setting: one for all actions, and overrides.
type faultConfig struct {
	all       *faultState
	perAction map[string]*faultState
}

// SetFaults sets the faults for every action without its own. The rate
// limit starts with a full bucket.
func (e *Emulator) SetFaults(f Faults) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults.all = newFaultState(f)
}

// SetActionFaults sets the faults for one action, replacing the global ones
// for it; its rate limit is a bucket of its own.
func (e *Emulator) SetActionFaults(action string, f Faults) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.faults.perAction == nil {
		e.faults.perAction = map[string]*faultState{}
	}
	e.faults.perAction[action] = newFaultState(f)
}

// ClearFaults removes all faults.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = faultConfig{}
}

// faultsFor returns the faults in force for a call of action by a client
// with userAgent, nil for none.
func (e *Emulator) faultsFor(action, userAgent string) *faultState {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.faults.perAction[action]
	if !ok {
		s = e.faults.all
	}
	if s != nil && !strings.Contains(userAgent, s.UserAgent) {
		return nil
	}
	return s
}

// verdict decides whether this call fails, after Latency and OutageDrop
// have been handled by the caller.
func (s *faultState) verdict() *APIError {
	switch {
	case s == nil:
		return nil
	case s.Denied:
		return &APIError{Code: CodeAccessDenied, Message: "User is not authorized to perform this action"}
	case s.Outage == OutageUnavailable:
		return &APIError{Code: CodeServiceUnavailable, Message: "Service Unavailable"}
	case s.limiter != nil && !s.limiter.Allow():
		return errThrottling()
	case rand.Float64() < s.ThrottleFraction:
		return errThrottling()
	case rand.Float64() < s.ErrorFraction:
		if s.ErrorCode == CodeServiceUnavailable {
			return &APIError{Code: CodeServiceUnavailable, Message: "Service Unavailable"}
		}
		return &APIError{Code: CodeInternalFailure, Message: "An internal error has occurred"}
	}
	return nil
}
