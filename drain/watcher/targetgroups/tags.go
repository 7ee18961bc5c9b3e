package targetgroups

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/internal/lbc"
)

// listTimeout bounds one listing of the account's target groups and tags.
const listTimeout = 2 * time.Minute

// describeTagsBatch is DescribeTags' limit of resource ARNs per call.
const describeTagsBatch = 20

// TagsAPI is the part of the ELBv2 client tag discovery uses.
type TagsAPI interface {
	awselbv2.DescribeTargetGroupsAPIClient
	DescribeTags(ctx context.Context, in *awselbv2.DescribeTagsInput, optFns ...func(*awselbv2.Options)) (*awselbv2.DescribeTagsOutput, error)
}

// Tags resolves targets from target-group tags, for clusters without the
// TargetGroupBinding CRD: a Service that selects the pod matches a target
// group tagged for that Service and port. The account's ip target groups and
// their tags are listed at most once per MaxAge, and again (at most once
// per MinAge) when a pod matches nothing, in case its target group is new.
type Tags struct {
	API TagsAPI
	// Finder finds the Services selecting a pod.
	Finder *lbc.Finder
	// Cluster is the value of the elbv2.k8s.aws/cluster tag of this
	// cluster's target groups; the controller's tags are ignored without it,
	// since they could belong to another cluster in the account.
	Cluster string
	MaxAge  time.Duration
	MinAge  time.Duration

	flight  singleflight.Group
	mu      sync.Mutex
	groups  []taggedGroup
	fetched time.Time
}

// taggedGroup is an ip target group and the Service port its tags name.
type taggedGroup struct {
	arn string
	// resource is the controller's "namespace/ingress-service:port".
	resource string
	// namespace, service and port are the v1 controller's tags.
	namespace, service, port string
}

// matches reports whether g is the target group for port sp of svc.
func (g taggedGroup) matches(svc *corev1.Service, sp corev1.ServicePort) bool {
	ports := []string{strconv.Itoa(int(sp.Port))}
	if sp.Name != "" {
		ports = append(ports, sp.Name)
	}
	for _, p := range ports {
		if g.resource != "" {
			// The ingress name may contain dashes, so match around it.
			if strings.HasPrefix(g.resource, svc.Namespace+"/") && strings.HasSuffix(g.resource, "-"+svc.Name+":"+p) {
				return true
			}
		} else if g.namespace == svc.Namespace && g.service == svc.Name && g.port == p {
			return true
		}
	}
	return false
}

// Targets implements Resolver.
func (t *Tags) Registrations(ctx context.Context, pod *corev1.Pod) ([]lbc.Registration, error) {
	selecting, err := t.Finder.Selecting(ctx, pod.Namespace, pod)
	if err != nil {
		return nil, err
	}
	if len(selecting) == 0 {
		return nil, nil
	}
	groups, err := t.index(ctx, t.MaxAge)
	if err != nil {
		return nil, err
	}
	targets := match(groups, selecting, pod)
	if len(targets) == 0 {
		if groups, err = t.index(ctx, t.MinAge); err != nil {
			return nil, err
		}
		targets = match(groups, selecting, pod)
	}
	return targets, nil
}

func match(groups []taggedGroup, svcs []*corev1.Service, pod *corev1.Pod) []lbc.Registration {
	var out []lbc.Registration
	for _, svc := range svcs {
		for _, sp := range svc.Spec.Ports {
			port, ok := lbc.RegisteredPort(&pod.Spec, lbc.TargetPortOf(sp))
			if !ok {
				continue
			}
			for _, g := range groups {
				if g.matches(svc, sp) {
					out = append(out, lbc.Registration{TargetGroupARN: g.arn, Port: port})
				}
			}
		}
	}
	return out
}

// index returns the tagged target groups, listing them again if the last
// listing is older than maxAge. The mutex guards only the cached listing:
// holds arriving during a listing join it through the singleflight and
// can leave when their own context ends, and the listing runs on a
// context of its own, so the hold that started it cannot end it for them.
func (t *Tags) index(ctx context.Context, maxAge time.Duration) ([]taggedGroup, error) {
	t.mu.Lock()
	groups, fetched := t.groups, t.fetched
	t.mu.Unlock()
	if !fetched.IsZero() && time.Since(fetched) < maxAge {
		return groups, nil
	}
	ch := t.flight.DoChan("", func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), listTimeout)
		defer cancel()
		groups, err := t.list(lctx)
		if err != nil {
			return nil, err
		}
		t.mu.Lock()
		t.groups, t.fetched = groups, time.Now()
		t.mu.Unlock()
		log.FromContext(ctx).V(1).Info("listed tagged target groups", "count", len(groups))
		return groups, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, fmt.Errorf("list tagged target groups: %w", r.Err)
		}
		return r.Val.([]taggedGroup), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (t *Tags) list(ctx context.Context) ([]taggedGroup, error) {
	var arns []string
	pages := awselbv2.NewDescribeTargetGroupsPaginator(t.API, &awselbv2.DescribeTargetGroupsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, tg := range page.TargetGroups {
			if tg.TargetType == types.TargetTypeEnumIp {
				arns = append(arns, aws.ToString(tg.TargetGroupArn))
			}
		}
	}
	var groups []taggedGroup
	for start := 0; start < len(arns); start += describeTagsBatch {
		out, err := t.API.DescribeTags(ctx, &awselbv2.DescribeTagsInput{ResourceArns: arns[start:min(start+describeTagsBatch, len(arns))]})
		if err != nil {
			return nil, err
		}
		for _, d := range out.TagDescriptions {
			tags := map[string]string{}
			for _, tag := range d.Tags {
				tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			g := taggedGroup{arn: aws.ToString(d.ResourceArn)}
			switch {
			case t.Cluster != "" && tags[lbc.TagCluster] == t.Cluster && tags[lbc.TagResource] != "":
				g.resource = tags[lbc.TagResource]
			case tags[lbc.TagV1Namespace] != "" && tags[lbc.TagV1ServiceName] != "" && tags[lbc.TagV1ServicePort] != "":
				g.namespace, g.service, g.port = tags[lbc.TagV1Namespace], tags[lbc.TagV1ServiceName], tags[lbc.TagV1ServicePort]
			default:
				continue
			}
			groups = append(groups, g)
		}
	}
	return groups, nil
}
