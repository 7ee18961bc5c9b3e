// Package webhook is albdrain's mutating admission webhook for pods: a thin
// adapter from admission requests to the backends lookup and the inject logic.
package webhook

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/webhook/inject"
)

// Path is where the pod mutation is served.
const Path = "/mutate-v1-pod"

// Config is the webhook's part of the manager's command line.
type Config struct {
	// Port and CertDir configure the webhook's TLS server.
	Port    int
	CertDir string
	// Mode is the default hold mode ("wait" or "sleep").
	Mode string
	// MaxHold, Sleep, Fallback, QuietPeriod, QuietPeriodMax and ShutdownBudget are inject.Options' durations.
	MaxHold, Sleep, Fallback, QuietPeriod, QuietPeriodMax, ShutdownBudget time.Duration
	// QuietGaps is inject.Options' QuietGaps.
	QuietGaps int
	// HelperImage and HelperImagePath locate the helper binary to copy into pods.
	HelperImage, HelperImagePath string
	// WatcherURL is the hold endpoint pods call; WatcherCAFile the PEM bundle they trust for it.
	WatcherURL, WatcherCAFile string
	// ReadinessGates adds the load balancer controller's readiness gates.
	ReadinessGates bool
	// InitCPU and InitMemory are the injected init container's requests
	// and limits, as quantities; empty leaves one unset.
	InitCPU, InitMemory RequestLimit
}

// RequestLimit is a request and a limit of one resource.
type RequestLimit struct{ Request, Limit string }

// BindFlags registers the webhook's flags with their defaults.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Port, "webhook-port", 9443, "port of the admission webhook's TLS server")
	fs.StringVar(&c.CertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding the webhook's tls.crt and tls.key")
	fs.StringVar(&c.Mode, "hold-mode", string(contract.ModeWait), "default preStop hold: wait (until the ALB is done, via the watcher) or sleep (fixed, native sleep)")
	fs.DurationVar(&c.MaxHold, "max-hold", 330*time.Second, "longest wait-mode hold; default covers AWS's 300s deregistration delay plus margin")
	fs.DurationVar(&c.Sleep, "sleep-duration", 30*time.Second, "length of a sleep-mode hold")
	fs.DurationVar(&c.Fallback, "fallback-sleep", 30*time.Second, "sleep of the in-pod helper when the watcher cannot answer (bounded by the max hold)")
	fs.DurationVar(&c.QuietPeriod, "quiet-period", time.Second, "shortest time without load-balancer traffic to the pod before a hold is released")
	fs.IntVar(&c.QuietGaps, "quiet-gaps", 15, "k: the quiet period is k mean gaps between the load balancer's requests (new flows for an NLB) seen at the start of the hold, within --quiet-period and --quiet-period-max; 0 makes it --quiet-period")
	fs.DurationVar(&c.QuietPeriodMax, "quiet-period-max", 30*time.Second, "longest quiet period, for pods with sparse traffic")
	fs.DurationVar(&c.ShutdownBudget, "shutdown-budget", 30*time.Second, "time the application gets after the hold, added to the grace period, for pods whose grace period is 0 or unset; a pod's own grace period is its budget")
	fs.StringVar(&c.HelperImage, "helper-image", "", "image holding the albdrain-hold helper (normally albdrain's own image)")
	fs.StringVar(&c.HelperImagePath, "helper-image-path", "/albdrain-hold", "path of the helper binary inside --helper-image")
	fs.StringVar(&c.WatcherURL, "watcher-url", "", "hold endpoint URL the in-pod helper calls, e.g. https://albdrain.albdrain.svc:8443")
	fs.BoolVar(&c.ReadinessGates, "readiness-gates", true, "add the load balancer controller's target-health readiness gate for each TargetGroupBinding that a controller has reconciled (status.observedGeneration); false adds none (pods opt out with albdrain.io/readiness-gate=disabled)")
	// Requests equal to limits pass a LimitRange's maxLimitRequestRatio, and
	// a CPU limit a ResourceQuota on limits.cpu; 64Mi passes the usual
	// LimitRange memory minimums. Copying the helper needs far less.
	fs.StringVar(&c.InitCPU.Request, "init-cpu-request", "100m", "CPU request of the injected init container; empty sets none")
	fs.StringVar(&c.InitCPU.Limit, "init-cpu-limit", "100m", "CPU limit of the injected init container; empty sets none")
	fs.StringVar(&c.InitMemory.Request, "init-memory-request", "64Mi", "memory request of the injected init container; empty sets none")
	fs.StringVar(&c.InitMemory.Limit, "init-memory-limit", "64Mi", "memory limit of the injected init container; empty sets none")
	fs.StringVar(&c.WatcherCAFile, "watcher-ca-file", "", "PEM bundle the helper trusts for an https --watcher-url (defaults to the system roots); published to pods, and kept current, as the ConfigMap "+contract.CABundleConfigMap+" in their namespaces")
}

// Validate checks the flags and returns the mutation options they describe.
func (c *Config) Validate() error {
	_, err := c.Options()
	return err
}

// Options turns the flags into inject.Options, reading the CA file.
func (c *Config) Options() (inject.Options, error) {
	var errs []error
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("--webhook-port %d: want 1-65535", c.Port))
	}
	if c.WatcherURL != "" && !strings.HasPrefix(c.WatcherURL, "https://") && !strings.HasPrefix(c.WatcherURL, "http://") {
		errs = append(errs, fmt.Errorf("--watcher-url %q: want an http or https URL", c.WatcherURL))
	}
	o := inject.Options{
		Mode:             contract.Mode(c.Mode),
		MaxHold:          c.MaxHold,
		Sleep:            c.Sleep,
		Fallback:         c.Fallback,
		QuietPeriod:      c.QuietPeriod,
		QuietGaps:        c.QuietGaps,
		QuietPeriodMax:   c.QuietPeriodMax,
		ShutdownBudget:   c.ShutdownBudget,
		HelperImage:      c.HelperImage,
		HelperImagePath:  c.HelperImagePath,
		WatcherURL:       c.WatcherURL,
		NoReadinessGates: !c.ReadinessGates,
	}
	var err error
	if o.InitResources, err = initResources(c.InitCPU, c.InitMemory); err != nil {
		errs = append(errs, err)
	}
	// The file is published to pods as a ConfigMap in their namespace (see
	// certs/cabundle), not copied into them: a copy would go stale when the
	// CA changes.
	if c.WatcherCAFile != "" {
		if _, err := os.Stat(c.WatcherCAFile); err != nil {
			errs = append(errs, fmt.Errorf("--watcher-ca-file: %w", err))
		}
		o.CABundle = true
	}
	if err := o.Validate(); err != nil {
		errs = append(errs, err)
	}
	return o, errors.Join(errs...)
}

// initResources parses the init container's requests and limits: each a
// valid positive quantity, no request above its limit.
func initResources(cpu, memory RequestLimit) (corev1.ResourceRequirements, error) {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	var errs []error
	for _, q := range []struct {
		name corev1.ResourceName
		rl   RequestLimit
	}{{corev1.ResourceCPU, cpu}, {corev1.ResourceMemory, memory}} {
		for _, v := range []struct {
			kind string
			s    string
			into corev1.ResourceList
		}{{"request", q.rl.Request, r.Requests}, {"limit", q.rl.Limit, r.Limits}} {
			if v.s == "" {
				continue
			}
			parsed, err := resource.ParseQuantity(v.s)
			if err != nil || parsed.Sign() <= 0 {
				errs = append(errs, fmt.Errorf("--init-%s-%s %q: want a positive quantity", q.name, v.kind, v.s))
				continue
			}
			v.into[q.name] = parsed
		}
		req, hasReq := r.Requests[q.name]
		lim, hasLim := r.Limits[q.name]
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			errs = append(errs, fmt.Errorf("--init-%s-request %s is above --init-%s-limit %s", q.name, req.String(), q.name, lim.String()))
		}
	}
	if len(r.Requests) == 0 {
		r.Requests = nil
	}
	if len(r.Limits) == 0 {
		r.Limits = nil
	}
	return r, errors.Join(errs...)
}
