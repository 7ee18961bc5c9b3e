package gates

import (
	"flag"
	"fmt"
	"time"
)

// Config is the reporter's part of the manager's command line.
type Config struct {
	// ReportAfter is how long an injected readiness gate may stay unset,
	// once the pod's containers are ready, before the pod is reported;
	// zero turns the reporter off.
	ReportAfter time.Duration
}

// BindFlags registers the reporter's flags with their defaults.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.ReportAfter, "readiness-gate-report-after", 5*time.Minute,
		"report a pod (Warning event "+ReasonGateUnset+", gauge "+unsetMetric+") whose albdrain-injected readiness gate has not been True this long after its containers became ready; 0 disables")
}

// Validate reports an invalid bound.
func (c *Config) Validate() error {
	if c.ReportAfter < 0 {
		return fmt.Errorf("--readiness-gate-report-after %v: want 0 (off) or a positive duration", c.ReportAfter)
	}
	return nil
}
