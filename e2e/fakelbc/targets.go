package fakelbc

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// targetsCache keeps each target group's targets as
// targetgroupbinding.cachedTargetsManager does: listed in full once, then
// for its TTL only the targets not known healthy are described again. So a
// healthy target that someone else deregisters stays healthy here until
// the entry expires.
type targetsCache struct {
	api API
	ttl time.Duration

	mu     sync.Mutex
	groups map[string]*cachedGroup // by ARN
}

type cachedGroup struct {
	expires time.Time
	targets []targetInfo
}

// targetInfo is a target and its health, nil when unknown since this
// controller registered or deregistered it.
type targetInfo struct {
	target
	health *elbv2types.TargetHealth
}

func (t targetInfo) is(s elbv2types.TargetHealthStateEnum) bool {
	return t.health != nil && t.health.State == s
}

func newTargetsCache(api API, ttl time.Duration) *targetsCache {
	return &targetsCache{api: api, ttl: ttl, groups: map[string]*cachedGroup{}}
}

// list is cachedTargetsManager.ListTargets: refreshAllTargets on a miss,
// refreshUnhealthyTargets on a hit (dropping the ones no longer registered).
func (m *targetsCache) list(ctx context.Context, arn string) ([]targetInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[arn]
	if g == nil || time.Now().After(g.expires) {
		all, err := m.describe(ctx, arn, nil)
		if err != nil {
			return nil, err
		}
		m.groups[arn] = &cachedGroup{expires: time.Now().Add(m.ttl), targets: all}
		return append([]targetInfo(nil), all...), nil
	}
	var keep []targetInfo
	var stale []target
	for _, t := range g.targets {
		if t.is(elbv2types.TargetHealthStateEnumHealthy) {
			keep = append(keep, t)
		} else {
			stale = append(stale, t.target)
		}
	}
	if len(stale) > 0 {
		fresh, err := m.describe(ctx, arn, stale)
		if err != nil {
			return nil, err
		}
		for _, t := range fresh {
			if !t.is(elbv2types.TargetHealthStateEnumUnused) {
				keep = append(keep, t)
			}
		}
	}
	g.targets = keep
	return append([]targetInfo(nil), keep...), nil
}

func (m *targetsCache) describe(ctx context.Context, arn string, only []target) ([]targetInfo, error) {
	in := &awselbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)}
	for _, t := range only {
		in.Targets = append(in.Targets, description(t))
	}
	out, err := m.api.DescribeTargetHealth(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("describe target health: %w", err)
	}
	res := make([]targetInfo, 0, len(out.TargetHealthDescriptions))
	for _, d := range out.TargetHealthDescriptions {
		res = append(res, targetInfo{target{aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port)}, d.TargetHealth})
	}
	return res, nil
}

// changed forgets the health of targets this controller just registered or
// deregistered, adding registered ones the cache lacks
// (recordSuccessfulRegisterTargetsOperation and its deregister twin).
func (m *targetsCache) changed(arn string, ts []target, registered bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[arn]
	if g == nil {
		return
	}
	todo := map[target]bool{}
	for _, t := range ts {
		todo[t] = true
	}
	for i := range g.targets {
		if todo[g.targets[i].target] {
			g.targets[i].health = nil
			delete(todo, g.targets[i].target)
		}
	}
	if registered {
		for t := range todo {
			g.targets = append(g.targets, targetInfo{target: t})
		}
	}
}
