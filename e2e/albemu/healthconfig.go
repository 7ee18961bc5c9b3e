package albemu

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// HealthCheck is a target group's active health-check configuration. Zero
// fields mean the default: AWS's, or Options.DefaultHealthCheck's.
type HealthCheck struct {
	Path               string        // default "/"
	Port               string        // "traffic-port" (default) or a port number
	Interval           time.Duration // default 30s
	Timeout            time.Duration // default 5s; must be below Interval
	HealthyThreshold   int           // default 5
	UnhealthyThreshold int           // default 2
	Matcher            string        // HTTP codes: "200" (default), "200,204", "200-299"
}

const trafficPort = "traffic-port"

// awsHealthCheckDefaults are ALB's defaults for ip targets over HTTP.
var awsHealthCheckDefaults = HealthCheck{
	Path:               "/",
	Port:               trafficPort,
	Interval:           30 * time.Second,
	Timeout:            5 * time.Second,
	HealthyThreshold:   5,
	UnhealthyThreshold: 2,
	Matcher:            "200",
}

func (h HealthCheck) withDefaults(def HealthCheck) HealthCheck {
	if h.Path == "" {
		h.Path = def.Path
	}
	if h.Port == "" {
		h.Port = def.Port
	}
	if h.Interval <= 0 {
		h.Interval = def.Interval
	}
	if h.Timeout <= 0 {
		h.Timeout = def.Timeout
	}
	if h.HealthyThreshold <= 0 {
		h.HealthyThreshold = def.HealthyThreshold
	}
	if h.UnhealthyThreshold <= 0 {
		h.UnhealthyThreshold = def.UnhealthyThreshold
	}
	if h.Matcher == "" {
		h.Matcher = def.Matcher
	}
	return h
}

// validate checks a health check that has its defaults filled in. Unlike
// the API it accepts sub-second durations and thresholds of 1, which tests
// need.
func (h HealthCheck) validate() *APIError {
	if !strings.HasPrefix(h.Path, "/") {
		return validationErrorf("Health check path must begin with '/'")
	}
	if h.Port != trafficPort {
		if _, err := parsePort(h.Port); err != nil {
			return validationErrorf("Health check port must be 'traffic-port' or a port number: %v", err)
		}
	}
	if h.Timeout >= h.Interval {
		return validationErrorf("Health check timeout must be smaller than the interval")
	}
	if _, err := parseMatcher(h.Matcher); err != nil {
		return validationErrorf("Invalid health check matcher %q: %v", h.Matcher, err)
	}
	return nil
}

// probePort is the port health checks go to for a target on port p.
func (h HealthCheck) probePort(p int32) string {
	if h.Port == trafficPort {
		return strconv.Itoa(int(p))
	}
	return h.Port
}

// parseMatcher turns "200", "200,202" or "200-299" into a predicate.
func parseMatcher(s string) (func(int) bool, error) {
	type span struct{ lo, hi int }
	var spans []span
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || l < 200 || h > 499 || l > h {
			return nil, fmt.Errorf("want codes 200-499 as \"200\", \"200,202\" or \"200-299\"")
		}
		spans = append(spans, span{l, h})
	}
	return func(code int) bool {
		for _, s := range spans {
			if code >= s.lo && code <= s.hi {
				return true
			}
		}
		return false
	}, nil
}

func parsePort(s string) (int32, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q is not in 1-65535", s)
	}
	return int32(p), nil
}

// ceilSeconds reports a duration in the API's whole seconds, rounding up so
// a sub-second setting never shows as 0.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
