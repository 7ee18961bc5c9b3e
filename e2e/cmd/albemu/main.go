// Command albemu runs the local ALB (ELBv2) emulator as a process, for demos
// and for tests in other languages. It prints the API URL (use it as the
// SDK's endpoint, e.g. AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2) and one
// line per target group with its ARN and listener URL, then serves until
// SIGINT or SIGTERM. Faults and logs are at <api>/_emu/ (see package albemu).
//
// Target groups come from -tg flags, "name[:port][@listen-addr]", or from a
// JSON file given with -config:
//
//	{"targetGroups": [{
//	  "name": "web", "port": 8080, "listen": "127.0.0.1:8000",
//	  "tags": {"elbv2.k8s.aws/cluster": "demo"},
//	  "deregistrationDelay": "5s",
//	  "healthCheck": {"path": "/healthz", "interval": "1s", "timeout": "500ms",
//	                  "healthyThreshold": 2, "unhealthyThreshold": 2, "matcher": "200"},
//	  "targets": [{"id": "127.0.0.2", "port": 8080}]
//	}]}
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/albdrain/albdrain/e2e/albemu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "albemu:", err)
		os.Exit(1)
	}
}

// groupConfig is one target group to create at start-up.
type groupConfig struct {
	Name                string            `json:"name"`
	Port                int32             `json:"port"`
	Listen              string            `json:"listen"`
	Tags                map[string]string `json:"tags"`
	DeregistrationDelay string            `json:"deregistrationDelay"`
	HealthCheck         healthConfig      `json:"healthCheck"`
	Targets             []targetConfig    `json:"targets"`
}

type healthConfig struct {
	Path               string `json:"path"`
	Port               string `json:"port"`
	Interval           string `json:"interval"`
	Timeout            string `json:"timeout"`
	HealthyThreshold   int    `json:"healthyThreshold"`
	UnhealthyThreshold int    `json:"unhealthyThreshold"`
	Matcher            string `json:"matcher"`
}

type targetConfig struct {
	ID   string `json:"id"`
	Port int32  `json:"port"`
}

type fileConfig struct {
	TargetGroups []groupConfig `json:"targetGroups"`
}

// tgFlags collects repeated -tg flags.
type tgFlags []groupConfig

func (f *tgFlags) String() string { return fmt.Sprint(len(*f), " target groups") }

// Set parses "name[:port][@listen-addr]".
func (f *tgFlags) Set(s string) error {
	spec, listen, _ := strings.Cut(s, "@")
	name, port, hasPort := strings.Cut(spec, ":")
	g := groupConfig{Name: name, Listen: listen}
	if hasPort {
		p, err := strconv.ParseInt(port, 10, 32)
		if err != nil {
			return fmt.Errorf("port in %q: %w", s, err)
		}
		g.Port = int32(p)
	}
	*f = append(*f, g)
	return nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("albemu", flag.ContinueOnError)
	var (
		opts       albemu.Options
		groups     tgFlags
		configFile string
		lag        = albemu.ConstantLag(2 * time.Second)
	)
	opts.Lag = &lag
	fs.StringVar(&opts.APIAddr, "api-addr", "127.0.0.1:0", "control-plane (Query API) listen address")
	fs.Var(&lag, "lag", "each node's propagation lag between Register/DeregisterTargets and its data plane: a duration, or a model such as lognormal:median=2s,p99=10s (see albemu.LagModel)")
	fs.IntVar(&opts.Nodes, "nodes", 3, "ALB nodes, one per availability zone; clients' connections are spread over them")
	fs.Uint64Var(&opts.Seed, "seed", 0, "seed of the lag draws")
	fs.BoolVar(&opts.HealthCheckDraining, "hc-draining", false, "keep health-checking targets while they drain")
	fs.DurationVar(&opts.ConnectTimeout, "connect-timeout", 10*time.Second, "target connect timeout (504 when exceeded)")
	fs.DurationVar(&opts.IdleTimeout, "idle-timeout", 60*time.Second, "idle timeout (504 when a target stays silent)")
	fs.DurationVar(&opts.DefaultDeregistrationDelay, "deregistration-delay", 300*time.Second, "default deregistration delay (0 for none)")
	fs.DurationVar(&opts.DefaultHealthCheck.Interval, "hc-interval", 30*time.Second, "default health-check interval")
	fs.DurationVar(&opts.DefaultHealthCheck.Timeout, "hc-timeout", 5*time.Second, "default health-check timeout")
	fs.IntVar(&opts.DefaultHealthCheck.HealthyThreshold, "healthy-threshold", 5, "default healthy threshold")
	fs.IntVar(&opts.DefaultHealthCheck.UnhealthyThreshold, "unhealthy-threshold", 2, "default unhealthy threshold")
	fs.StringVar(&opts.DefaultHealthCheck.Path, "hc-path", "/", "default health-check path")
	fs.StringVar(&opts.DefaultHealthCheck.Matcher, "matcher", "200", "default health-check success codes")
	fs.BoolVar(&opts.AllowNonLoopbackTargets, "allow-non-loopback", false, "accept non-loopback target IPs (never contacted)")
	fs.Var(&groups, "tg", "target group to create, name[:port][@listen-addr] (repeatable)")
	fs.StringVar(&configFile, "config", "", "JSON file with target groups to create")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if opts.DefaultDeregistrationDelay == 0 {
		opts.DefaultDeregistrationDelay = albemu.Immediate
	}
	if configFile != "" {
		raw, err := os.ReadFile(configFile)
		if err != nil {
			return err
		}
		var fc fileConfig
		if err := json.Unmarshal(raw, &fc); err != nil {
			return fmt.Errorf("%s: %w", configFile, err)
		}
		groups = append(groups, fc.TargetGroups...)
	}

	emu, err := albemu.New(opts)
	if err != nil {
		return err
	}
	defer emu.Close()
	fmt.Fprintf(out, "api %s\n", emu.URL())
	for _, g := range groups {
		arn, url, err := setUp(emu, g)
		if err != nil {
			return fmt.Errorf("target group %q: %w", g.Name, err)
		}
		fmt.Fprintf(out, "targetgroup %s %s listener %s\n", g.Name, arn, url)
	}
	<-ctx.Done()
	return nil
}

// setUp creates a target group with its listener and initial targets.
func setUp(emu *albemu.Emulator, g groupConfig) (arn, url string, err error) {
	spec := albemu.TargetGroupSpec{Name: g.Name, Port: g.Port, Tags: g.Tags}
	durations := []struct {
		text string
		dst  *time.Duration
	}{
		{g.DeregistrationDelay, &spec.DeregistrationDelay},
		{g.HealthCheck.Interval, &spec.HealthCheck.Interval},
		{g.HealthCheck.Timeout, &spec.HealthCheck.Timeout},
	}
	for _, d := range durations {
		if d.text == "" {
			continue
		}
		if *d.dst, err = time.ParseDuration(d.text); err != nil {
			return "", "", err
		}
	}
	if g.DeregistrationDelay != "" && spec.DeregistrationDelay == 0 {
		spec.DeregistrationDelay = albemu.Immediate
	}
	hc := g.HealthCheck
	spec.HealthCheck.Path, spec.HealthCheck.Port, spec.HealthCheck.Matcher = hc.Path, hc.Port, hc.Matcher
	spec.HealthCheck.HealthyThreshold, spec.HealthCheck.UnhealthyThreshold = hc.HealthyThreshold, hc.UnhealthyThreshold

	if arn, err = emu.CreateTargetGroup(spec); err != nil {
		return "", "", err
	}
	var targets []albemu.Target
	for _, t := range g.Targets {
		targets = append(targets, albemu.Target{ID: t.ID, Port: t.Port})
	}
	if len(targets) > 0 {
		if err := emu.RegisterTargets(arn, targets...); err != nil {
			return "", "", err
		}
	}
	ln, err := emu.AddListener(arn, g.Listen)
	if err != nil {
		return "", "", err
	}
	return arn, ln.URL(), nil
}
