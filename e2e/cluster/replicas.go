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
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/e2e/helmchart"
	"github.com/albdrain/albdrain/e2e/ports"
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
	// slice and stopFollow are the Service's stand-ins with Endpoints.
	slice      *serviceSlice
	stopFollow context.CancelFunc
}

// ReplicaOptions configure StartReplicas.
type ReplicaOptions struct {
	// APIServerProxy routes every replica's apiserver connections through
	// Replicas.APIServer.
	APIServerProxy bool
	// Endpoints runs the replicas as the chart does, each stopping only
	// once out of its Service's EndpointSlice, and routes both Services by
	// that slice (see kubeProxy); Terminate stops a replica as the
	// deletion of its pod does.
	Endpoints bool
	// Flags are added to every replica's command line, e.g. to turn on a
	// feature the chart leaves off.
	Flags map[string]string
}

// Shutdown timings of replicas run with Endpoints: the settle outlasts
// ServiceLag, as the chart's outlasts kube-proxy's.
const (
	replicaSettle           = 4 * ServiceLag
	replicaEndpointsTimeout = 10 * time.Second
)

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
	for i := range n {
		wport, err := ports.Reserve()
		if err != nil {
			return nil, err
		}
		hport, err := ports.Reserve()
		if err != nil {
			return nil, err
		}
		holdAddr := net.JoinHostPort(host, strconv.Itoa(hport))
		flags := map[string]string{
			"--webhook-port":      strconv.Itoa(wport),
			"--hold-bind-address": holdAddr,
		}
		for k, v := range o.Flags {
			flags[k] = v
		}
		if o.Endpoints {
			flags["--shutdown-service"] = helmchart.ReleaseName
			flags["--pod-namespace"] = Namespace
			flags["--pod-ip"] = replicaIP(i).String()
			flags["--shutdown-settle"] = replicaSettle.String()
			flags["--shutdown-endpoints-timeout"] = replicaEndpointsTimeout.String()
		}
		args := withFlags(single.args, flags)
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
	if o.Endpoints {
		return r, r.routeBySlice(ctx, webhookAddr, single.config.Drain.HoldAddr)
	}
	if r.Webhook, err = NewProxy(webhookAddr, r.webhookAddrs...); err != nil {
		return nil, fmt.Errorf("webhook Service: %w", err)
	}
	if r.Hold, err = NewProxy(single.config.Drain.HoldAddr, r.holdAddrs...); err != nil {
		return nil, fmt.Errorf("hold Service: %w", err)
	}
	return r, nil
}

// routeBySlice writes the Service's EndpointSlice with every replica ready
// and has the Services' proxies follow it.
func (r *Replicas) routeBySlice(ctx context.Context, webhookAddr, holdAddr string) error {
	var err error
	if r.slice, err = newServiceSlice(ctx, r.c.Env.Client, len(r.managers)); err != nil {
		return fmt.Errorf("albdrain's EndpointSlice: %w", err)
	}
	if r.Webhook, err = NewServiceProxy(webhookAddr); err != nil {
		return fmt.Errorf("webhook Service: %w", err)
	}
	if r.Hold, err = NewServiceProxy(holdAddr); err != nil {
		return fmt.Errorf("hold Service: %w", err)
	}
	wc, err := client.NewWithWatch(r.c.Env.Config, client.Options{Scheme: r.c.Env.Client.Scheme()})
	if err != nil {
		return err
	}
	k := &kubeProxy{webhook: r.Webhook, hold: r.Hold, webhookAddrs: r.webhookAddrs, holdAddrs: r.holdAddrs}
	fctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stopFollow = stop
	return k.follow(fctx, wc)
}

// Terminate stops replica i, run with Endpoints, as the deletion of its
// pod does: the kubelet sends SIGTERM (the manager's context ends) and the
// EndpointSlice controller marks its endpoint terminating and not ready.
// It returns once the manager has exited, and its endpoint is gone.
func (r *Replicas) Terminate(ctx context.Context, i int) error {
	stopped := make(chan error, 1)
	go func() { stopped <- r.managers[i].Stop() }()
	err := r.slice.terminating(ctx, i)
	if err := errors.Join(err, <-stopped); err != nil {
		return err
	}
	return r.slice.remove(ctx, i)
}

// WebhookBackend is replica i's webhook server, as a backend of the webhook Service.
func (r *Replicas) WebhookBackend(i int) string { return r.webhookAddrs[i] }

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
	if r.slice != nil {
		// Out of the slice, the replicas stop after their settle time.
		r.stopFollow()
		errs = append(errs, r.slice.delete(ctx))
	}
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
