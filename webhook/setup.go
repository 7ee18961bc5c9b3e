package webhook

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/albdrain/albdrain/internal/lbc"
)

// Setup registers the pod mutation on the manager's webhook server. finder
// is the manager's lbc.Finder, shared with the watcher; m the webhook's
// collectors, which the manager registers.
func Setup(ctx context.Context, mgr ctrl.Manager, cfg Config, finder *lbc.Finder, m *Metrics) error {
	opts, err := cfg.Options()
	if err != nil {
		return err
	}
	ctrl.LoggerFrom(ctx).Info("admission webhook", "mode", opts.Mode)
	d := &PodDefaulter{
		Finder:  finder,
		Options: opts,
		Metrics: m,
	}
	mgr.GetWebhookServer().Register(Path, &admission.Webhook{Handler: NewPatchHandler(mgr.GetScheme(), d)})
	return nil
}
