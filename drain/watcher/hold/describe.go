package hold

import (
	"fmt"
	"strings"

	"github.com/albdrain/albdrain/drain/watcher/release"
	"github.com/albdrain/albdrain/internal/lbc"
)

// describe summarises target states for messages.
func describe(targets []lbc.Registration, obs []release.Observation) string {
	parts := make([]string, len(targets))
	for i, t := range targets {
		state := obs[i].State
		switch {
		case !obs[i].Seen:
			state = "not yet known"
		case obs[i].GroupGone:
			state = "target group deleted"
		case state == "":
			state = "not registered"
		}
		parts[i] = fmt.Sprintf("%s port %d: %s", targetGroupName(t.TargetGroupARN), t.Port, state)
	}
	return strings.Join(parts, "; ")
}

// targetGroupName shortens an ARN to the target group's name for messages.
func targetGroupName(arn string) string {
	// arn:aws:elasticloadbalancing:region:account:targetgroup/name/id
	if _, rest, ok := strings.Cut(arn, ":targetgroup/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return name
	}
	return arn
}
