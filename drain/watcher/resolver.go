package watcher

import (
	"time"

	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/go-logr/logr"

	"github.com/albdrain/albdrain/drain/watcher/targetgroups"
	"github.com/albdrain/albdrain/internal/lbc"
)

// minTagRelist is how soon target-group tags may be listed again for a pod
// that matched none, in case its target group is new.
const minTagRelist = 30 * time.Second

// NewResolver returns the resolver of pods' registrations that cfg
// describes: through TargetGroupBindings while the cluster serves the CRD,
// and through target-group tags otherwise; the CRD may be installed while
// the manager runs. The manager builds one (package app) for the watcher
// and explain alike.
func NewResolver(log logr.Logger, cfg Config, finder *lbc.Finder, api *awselbv2.Client) targetgroups.Resolver {
	if !finder.Served.Has(lbc.APITargetGroupBinding) && cfg.ClusterName == "" {
		log.Info("no TargetGroupBinding CRD and no --cluster-name: until the CRD is installed, only the v1 ingress controller's target-group tags can be matched")
	}
	return targetgroups.Either{
		Use:      func() bool { return finder.Served.Has(lbc.APITargetGroupBinding) },
		Bindings: targetgroups.Bindings{Finder: finder},
		Tags: &targetgroups.Tags{
			API:     api,
			Finder:  finder,
			Cluster: cfg.ClusterName,
			MaxAge:  cfg.DiscoveryRefresh,
			MinAge:  min(cfg.DiscoveryRefresh, minTagRelist),
		},
	}
}
