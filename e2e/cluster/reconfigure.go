package cluster

import (
	"context"
	"errors"
	"os"
	"slices"
)

// RestartWith restarts albdrain's manager with extra command-line flags
// after its own, as editing the Deployment's arguments would: a later flag
// wins, so a benchmark can run the same cluster under another release
// policy. Webhook and hold endpoint stay on their addresses. The flags are
// checked before the running manager is stopped, so a bad flag leaves it
// running.
func (a *Albdrain) RestartWith(ctx context.Context, extraArgs ...string) error {
	args := append(slices.Clone(a.args), extraArgs...)
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	if err := a.Stop(); err != nil {
		return err
	}
	a.args, a.config = args, cfg
	return a.Start(ctx)
}

// ReleasePolicy is the watcher's release policy now.
func (a *Albdrain) ReleasePolicy() string { return string(a.config.Drain.ReleasePolicy) }

// RestartWithHoldCert restarts albdrain's manager serving the hold endpoint
// with the certificate in certDir and telling pods to trust caFile, as a
// reinstall with a certificate of its own would; both files may then be
// replaced while it runs, as cert-manager rotates them. restore restarts
// it as it was.
func (a *Albdrain) RestartWithHoldCert(ctx context.Context, certDir, caFile string) (restore func(context.Context) error, err error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	args := withFlags(a.args, map[string]string{"--hold-cert-dir": certDir, "--watcher-ca-file": caFile})
	cfg, err := parseConfig(args)
	if err != nil {
		return nil, err
	}
	if err := a.Stop(); err != nil {
		return nil, err
	}
	saved, savedCfg, savedCA := a.args, a.config, a.holdCA
	restore = func(ctx context.Context) error {
		if err := a.Stop(); err != nil {
			return err
		}
		a.args, a.config, a.holdCA = saved, savedCfg, savedCA
		return a.Start(ctx)
	}
	a.args, a.config, a.holdCA = args, cfg, ca
	if err := a.Start(ctx); err != nil {
		return nil, errors.Join(err, restore(ctx))
	}
	return restore, nil
}
