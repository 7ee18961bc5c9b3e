// Command lbcreact measures the reaction time of the real AWS Load
// Balancer Controller and of the harness's stand-in (see package
// lbcreact) against one real kube-apiserver and the ELBv2 emulator, and
// prints each one's registration, readiness-gate and deregistration times.
//
// The real controller is not in the Go module proxy: give its source tree
// (-lbc-src, for its CRDs) and the controller binary built from it
// (-lbc-binary); `make lbc-reaction LBC_SRC=dir` builds and runs both.
// Without them only the stand-in is measured. It needs KUBEBUILDER_ASSETS.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/tools/lbcreact"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "lbcreact:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var (
		src, bin, jsonOut string
		opts              lbcreact.Options
		verbose           bool
		rounds            int
	)
	flag.StringVar(&src, "lbc-src", "", "the AWS Load Balancer Controller's source tree (its config/crd/bases are installed)")
	flag.StringVar(&bin, "lbc-binary", "", "the controller binary built from -lbc-src; without it only the stand-in is measured")
	flag.IntVar(&opts.Pods, "pods", 20, "pods registered and then terminated, one at a time, per round")
	flag.IntVar(&rounds, "rounds", 3, "rounds; each measures every controller once, so both meet the same spells of machine load")
	flag.DurationVar(&opts.Gap, "gap", 300*time.Millisecond, "pause between two samples")
	flag.DurationVar(&opts.Settle, "settle", 2*time.Second, "pause after the pods are created, before the first sample")
	flag.StringVar(&jsonOut, "json", "", "also write the samples to this file as JSON")
	flag.BoolVar(&verbose, "v", false, "log every sample")
	flag.Parse()
	if (src == "") != (bin == "") {
		return fmt.Errorf("-lbc-src and -lbc-binary go together")
	}
	// The stand-in's cache logs through controller-runtime, which
	// otherwise complains, with a stack, that nobody set its logger.
	ctrllog.SetLogger(logr.Discard())
	if verbose {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		ctrllog.SetLogger(logr.FromSlogHandler(opts.Log.Handler()))
	}

	var crds []*apiextensionsv1.CustomResourceDefinition
	if src != "" {
		// The controller's own CRDs: it watches IngressClassParams and
		// ALBTargetControlConfigs too, and will not start without them.
		o := envtest.CRDInstallOptions{Paths: []string{filepath.Join(src, "config", "crd", "bases")}, ErrorIfPathMissing: true}
		if err := envtest.ReadCRDFiles(&o); err != nil {
			return fmt.Errorf("read the controller's CRDs: %w", err)
		}
		crds = o.CRDs
	} else {
		crd, err := kubetest.TargetGroupBindingCRD()
		if err != nil {
			return err
		}
		crds = append(crds, crd)
	}
	env, stopEnv, err := kubetest.Run()
	if err != nil {
		return err
	}
	defer func() {
		if err := stopEnv(); err != nil {
			fmt.Fprintln(os.Stderr, "lbcreact: stop control plane:", err)
		}
	}()
	if err := kubetest.InstallCRDs(env.Config, crds...); err != nil {
		return err
	}

	var ctls []lbcreact.Controller
	if bin != "" {
		user, err := env.Environment.ControlPlane.AddUser(envtest.User{Name: "aws-load-balancer-controller", Groups: []string{"system:masters"}}, nil)
		if err != nil {
			return err
		}
		kc, err := user.KubeConfig()
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "lbcreact-")
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "lbcreact: the real controller's files and log are in", dir)
		ctls = append(ctls, lbcreact.Real(bin, dir, kc))
	}
	ctls = append(ctls, lbcreact.StandIn(env.Config))

	if rounds < 1 || rounds*len(ctls) > 255 {
		return fmt.Errorf("-rounds=%d: want 1-%d", rounds, 255/len(ctls))
	}
	results := make([]lbcreact.Result, len(ctls))
	for round := range rounds {
		for i, ctl := range ctls {
			r, err := lbcreact.Measure(ctx, env.Config, env.Client, round*len(ctls)+i+1, ctl, opts)
			if err != nil {
				return err
			}
			results[i].Controller = r.Controller
			results[i].Add(r)
		}
	}
	if err := lbcreact.Write(os.Stdout, results); err != nil {
		return err
	}
	if jsonOut == "" {
		return nil
	}
	raw, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(jsonOut, raw, 0o644)
}
