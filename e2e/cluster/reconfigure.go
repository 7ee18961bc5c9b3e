package cluster

import (
	"context"
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
