package cluster

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
)

// Replicas is albdrain's manager run as its chart runs it, a Deployment of
// several replicas behind two Services, in place of the cluster's single
// manager: the webhook Service on the address the apiserver calls, the hold
// Service on the address pods are told about. Tests kill a replica through
// Kill, or cut the replicas' path to the apiserver through APIServer.
type Replicas struct {
	// Webhook and Hold are the Services; their backends are the replicas'
	// webhook and hold servers.
	Webhook, Hold *Proxy
	// APIServer is the replicas' only way to the apiserver when
	// StartReplicas was asked for it; nil otherwise.
	APIServer *Proxy

	c            *Cluster
	managers     []*Albdrain
	webhookAddrs []string
	holdAddrs    []string
}

// ReplicaOptions configure StartReplicas.
type ReplicaOptions struct {
	// APIServerProxy routes every replica's apiserver connections through
	// Replicas.APIServer.
	APIServerProxy bool
}

// StartReplicas stops the cluster's manager and runs n replicas with its
// configuration, each on ports of its own, behind the Services. Close
// undoes it.
func (c *Cluster) StartReplicas(ctx context.Context, n int, o ReplicaOptions) (_ *Replicas, err error) {
	single := c.Albdrain
	if err := single.Stop(); err != nil {
		return nil, err
	}
	r := &Replicas{c: c}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.Close(ctx))
		}
	}()
	env := *single.env
	if o.APIServerProxy {
		u, err := url.Parse(env.Config.Host)
		if err != nil {
			return nil, fmt.Errorf("apiserver address %q: %w", env.Config.Host, err)
		}
		if r.APIServer, err = NewProxy("127.0.0.1:0", u.Host); err != nil {
			return nil, err
		}
		env.Config = rest.CopyConfig(env.Config)
		// The apiserver's certificate names 127.0.0.1, where the proxy listens too.
		env.Config.Host = u.Scheme + "://" + r.APIServer.Addr()
	}
	host := c.Env.Environment.WebhookInstallOptions.LocalServingHost
	for range n {
		wport, err := freePort()
		if err != nil {
			return nil, err
		}
		hport, err := freePort()
		if err != nil {
			return nil, err
		}
		holdAddr := net.JoinHostPort(host, strconv.Itoa(hport))
		args := withFlags(single.args, map[string]string{
			"--webhook-port":      strconv.Itoa(wport),
			"--hold-bind-address": holdAddr,
		})
		cfg, err := parseConfig(args)
		if err != nil {
			return nil, err
		}
		a := &Albdrain{env: &env, user: single.user, args: args, config: cfg, aws: single.aws, holdCA: single.holdCA}
		if err := a.Start(ctx); err != nil {
			return nil, err
		}
		r.managers = append(r.managers, a)
		r.webhookAddrs = append(r.webhookAddrs, net.JoinHostPort(host, strconv.Itoa(wport)))
		r.holdAddrs = append(r.holdAddrs, holdAddr)
	}
	webhookAddr := net.JoinHostPort(host, strconv.Itoa(c.Env.Environment.WebhookInstallOptions.LocalServingPort))
	if r.Webhook, err = NewProxy(webhookAddr, r.webhookAddrs...); err != nil {
		return nil, fmt.Errorf("webhook Service: %w", err)
	}
	if r.Hold, err = NewProxy(single.config.Drain.HoldAddr, r.holdAddrs...); err != nil {
		return nil, fmt.Errorf("hold Service: %w", err)
	}
	return r, nil
}

// Len is the number of replicas started.
func (r *Replicas) Len() int { return len(r.managers) }

// HoldBackend is replica i's hold server, as a backend of the hold Service.
func (r *Replicas) HoldBackend(i int) string { return r.holdAddrs[i] }

// Kill ends replica i as a crash or a lost node would: its connections
// drop unanswered, both Services stop sending to it, then it stops.
func (r *Replicas) Kill(i int) error {
	r.Hold.Kill(r.holdAddrs[i])
	r.Webhook.Kill(r.webhookAddrs[i])
	return r.managers[i].Stop()
}

// Close stops the replicas and their Services and starts the cluster's
// single manager again.
func (r *Replicas) Close(ctx context.Context) error {
	var errs []error
	for _, p := range []*Proxy{r.Webhook, r.Hold} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	for _, a := range r.managers {
		errs = append(errs, a.Stop())
	}
	if r.APIServer != nil {
		errs = append(errs, r.APIServer.Close())
	}
	errs = append(errs, r.c.Albdrain.Start(ctx))
	return errors.Join(errs...)
}

// withFlags returns args with the given flags' values replaced.
func withFlags(args []string, values map[string]string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if v, ok := values[name]; ok {
			a = name + "=" + v
		}
		out = append(out, a)
	}
	return out
}

// parseConfig reads the manager's command line as its main does. The
// logging flags are accepted and left unused: the harness's manager logs
// through the harness's logger.
func parseConfig(args []string) (app.Config, error) {
	var cfg app.Config
	fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.BindFlags(fs)
	var logging zap.Options
	logging.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("albdrain flags: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("albdrain flags: %w", err)
	}
	return cfg, nil
}

// HoldAddr is the address of the hold endpoint pods are told to call: the
// single manager's, or the hold Service's in front of replicas.
func (a *Albdrain) HoldAddr() string { return a.config.Drain.HoldAddr }
