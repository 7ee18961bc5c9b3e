// Package app wires albdrain's manager: one controller-runtime manager that
// serves the admission webhook and runs the drain watcher. main only parses
// flags and calls Run, so tests can start the very same manager.
package app

import (
	"errors"
	"flag"
	"net"
	"net/netip"
	"net/url"
	"strconv"

	"github.com/albdrain/albdrain/certs"
	"github.com/albdrain/albdrain/drain/watcher"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/shutdown"
	"github.com/albdrain/albdrain/webhook"
	"github.com/albdrain/albdrain/webhook/gates"
)

// Config is the manager's whole command line.
type Config struct {
	// MetricsAddr serves Prometheus metrics; "0" disables.
	MetricsAddr string
	// ProbeAddr serves /healthz and /readyz.
	ProbeAddr string
	// Webhook configures the admission webhook.
	Webhook webhook.Config
	// Gates configures the report of pods its readiness gates keep NotReady.
	Gates gates.Config
	// Drain configures the watcher and its hold endpoint.
	Drain watcher.Config
	// Certs configures the serving certificate of the webhook and hold endpoint.
	Certs certs.Config
	// LBC mirrors the load balancer controller's settings.
	LBC lbc.Config
	// Shutdown orders the replica's stop around its Service's endpoints.
	Shutdown shutdown.Config
}

// BindFlags registers every flag of the manager.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.MetricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint; 0 disables it")
	fs.StringVar(&c.ProbeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz probes")
	c.Webhook.BindFlags(fs)
	c.Gates.BindFlags(fs)
	c.Drain.BindFlags(fs)
	c.Certs.BindFlags(fs)
	c.LBC.BindFlags(fs)
	c.Shutdown.BindFlags(fs)
}

// Validate reports every invalid flag at once.
func (c *Config) Validate() error {
	var errs []error
	if c.ProbeAddr == "" {
		errs = append(errs, errors.New("--health-probe-bind-address is required"))
	}
	if err := c.Webhook.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Gates.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Drain.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Certs.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.LBC.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Shutdown.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// drainConfig is the watcher's configuration as the manager runs it. The
// webhook and the hold endpoint serve the same certificate, which certs
// writes to the webhook's directory: the hold endpoint reads it there
// unless --hold-cert-dir names another.
func (c Config) drainConfig() watcher.Config {
	d := c.Drain
	if d.CertDir == "" {
		d.CertDir = c.Webhook.CertDir
	}
	d.Peers.Namespace = c.Shutdown.Namespace
	d.Peers.CAFile = c.Webhook.WatcherCAFile
	d.Peers.ServerName, d.Peers.Advertise = peerAddresses(c.Webhook.WatcherURL, d.HoldAddr, c.Shutdown.PodIP)
	return d
}

// peerAddresses are what the replicas' shared polling needs of the
// manager's addresses: the name the hold certificate carries (the host of
// the https URL pods call) and where the other replicas reach this one (the
// hold endpoint's own address, or the pod's IP on its port). Either is
// empty when it cannot be known, and the replica then polls for itself.
func peerAddresses(watcherURL, holdAddr, podIP string) (serverName string, advertise netip.AddrPort) {
	if u, err := url.Parse(watcherURL); err == nil && u.Scheme == "https" {
		serverName = u.Hostname()
	}
	host, port, err := net.SplitHostPort(holdAddr)
	if err != nil {
		return serverName, advertise
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return serverName, advertise
	}
	if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
		return serverName, netip.AddrPortFrom(a, uint16(p))
	}
	if a, err := netip.ParseAddr(podIP); err == nil {
		return serverName, netip.AddrPortFrom(a, uint16(p))
	}
	return serverName, advertise
}
