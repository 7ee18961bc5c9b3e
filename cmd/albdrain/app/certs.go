package app

import (
	"context"
	"path/filepath"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/albdrain/albdrain/certs"
	"github.com/albdrain/albdrain/certs/cabundle"
)

// setupCerts has the serving certificate in the webhook's certificate
// directory before the manager's TLS servers start, and keeps it rotated.
// It runs before the webhook is set up because, when albdrain is its own
// CA, that CA is what pods must trust for the hold endpoint: it is handed
// to them from the mounted Secret unless --watcher-ca-file names another.
// Pods get it through the ConfigMap the cabundle publisher keeps in their
// namespaces, so a CA that changes reaches pods already running.
// The flag cannot simply point there, since the file does not exist when
// the flags are validated on a fresh install.
func setupCerts(ctx context.Context, mgr ctrl.Manager, cfg *Config, p *Process) error {
	ready, err := certs.Setup(ctx, mgr, cfg.Certs, cfg.Webhook.CertDir, p.rotatorName())
	if err != nil {
		return err
	}
	if cfg.Certs.Rotate && cfg.Webhook.WatcherCAFile == "" && strings.HasPrefix(cfg.Webhook.WatcherURL, "https://") {
		cfg.Webhook.WatcherCAFile = filepath.Join(cfg.Webhook.CertDir, certs.CACertFile)
	}
	if cfg.Webhook.WatcherCAFile != "" {
		pub := &cabundle.Publisher{File: cfg.Webhook.WatcherCAFile, Client: mgr.GetClient(), Reader: mgr.GetAPIReader()}
		if err := pub.Setup(mgr); err != nil {
			return err
		}
	}
	return mgr.AddReadyzCheck("certificates", ready)
}
