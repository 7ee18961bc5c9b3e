// Command albdrain runs the admission webhook and the drain watcher that keep
// pods behind an AWS ALB serving until the load balancer is done with them.
package main

import (
	"flag"
	"fmt"
	"os"

	// The image holds albdrain's binaries and nothing else, no CA bundle:
	// the manager falls back to these roots to reach AWS over TLS.
	_ "golang.org/x/crypto/x509roots/fallback"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
)

func main() {
	var cfg app.Config
	cfg.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "albdrain: invalid flags:", err)
		os.Exit(2)
	}
	ctx := ctrl.SetupSignalHandler()
	mgr, err := app.NewManager(ctx, ctrl.GetConfigOrDie(), cfg, app.Options{})
	if err == nil {
		err = mgr.Start(ctx)
	}
	if err != nil {
		ctrl.Log.Error(err, "albdrain stopped")
		os.Exit(1)
	}
}
