// Package shutdown stops a manager replica without failing what reaches it
// during a rollout of albdrain itself. On SIGTERM the replica first fails
// its readiness, keeps admitting pods and holding them while it is still a
// ready endpoint of its Service (the apiserver and kube-proxy still send it
// work), waits until the EndpointSlices show it gone or not ready, lets the
// apiserver's and kube-proxy's copies catch up for a short settle time,
// and only then stops the manager, whose graceful shutdown ends in-flight
// admissions and answers holds "retry" so their helpers re-ask another
// replica through the Service.
package shutdown

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"time"
)

// Config is where the replica finds itself among its Service's endpoints,
// and how long each step of its stop may take.
type Config struct {
	// Service is the name of the Service in front of the replica's webhook
	// and hold endpoint; empty stops at once on SIGTERM, as a replica with
	// no Service (a local run, a test) has no endpoints to leave.
	Service string
	// Namespace is the replica's, and its Service's, namespace.
	Namespace string
	// PodIP is the replica's own address in the EndpointSlices.
	PodIP string
	// EndpointsTimeout bounds the wait to leave the Service's endpoints.
	EndpointsTimeout time.Duration
	// Settle is how long the replica keeps serving after it left them, for
	// the apiserver's and kube-proxy's copies of the endpoints to follow.
	Settle time.Duration
	// Grace bounds the manager's own graceful shutdown that follows:
	// in-flight admissions finishing, holds answered "retry".
	Grace time.Duration
}

// BindFlags registers the flags with their defaults. The three steps
// together (35 s by default) must fit in the pod's
// terminationGracePeriodSeconds, which the chart checks.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Service, "shutdown-service", "", "Service in front of this replica; on SIGTERM the replica keeps serving until it is no longer a ready endpoint of it; empty stops at once")
	fs.StringVar(&c.Namespace, "pod-namespace", "", "namespace of this replica's pod and its Service (downward API metadata.namespace)")
	fs.StringVar(&c.PodIP, "pod-ip", "", "this replica's pod IP as its Service's EndpointSlices list it (downward API status.podIP)")
	fs.DurationVar(&c.EndpointsTimeout, "shutdown-endpoints-timeout", 20*time.Second, "longest wait after SIGTERM for the replica to leave its Service's ready endpoints")
	fs.DurationVar(&c.Settle, "shutdown-settle", 5*time.Second, "how long the replica keeps serving after it left its Service's endpoints, for the apiserver and kube-proxy to follow")
	fs.DurationVar(&c.Grace, "shutdown-grace", 10*time.Second, "bound on stopping the manager's servers once out of the endpoints: in-flight admissions finish, holds are answered retry")
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if c.Service != "" {
		if c.Namespace == "" {
			errs = append(errs, errors.New("--pod-namespace is required with --shutdown-service"))
		}
		if _, err := netip.ParseAddr(c.PodIP); err != nil {
			errs = append(errs, fmt.Errorf("--pod-ip %q must be an IP address with --shutdown-service", c.PodIP))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"shutdown-endpoints-timeout", c.EndpointsTimeout}, {"shutdown-settle", c.Settle}, {"shutdown-grace", c.Grace}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("--%s must not be negative", d.name))
		}
	}
	return errors.Join(errs...)
}

// Enabled reports whether the replica waits to leave its Service's endpoints.
func (c Config) Enabled() bool { return c.Service != "" }

// Total is the longest a stop takes from SIGTERM.
func (c Config) Total() time.Duration { return c.EndpointsTimeout + c.Settle + c.Grace }
