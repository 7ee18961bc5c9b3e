package fakelbc

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/albdrain/albdrain/internal/lbc"
)

// TagResource is the tag, "namespace/service:port", by which the stand-in
// finds the target group of a Gateway backend. The real controller creates
// that target group; here the scenario creates it, tagged, beforehand.
const TagResource = "ingress.k8s.aws/resource"

// reconcileRoute does for an HTTPRoute on an ALB Gateway what the real
// controller's gateway reconciler does for Service backends of target type
// ip: it creates a TargetGroupBinding for each, which the binding
// reconciler then registers. It reads the Gateway API on its own, and only
// as far as the scenarios use it: same-namespace parents and backends, and
// a Service TargetGroupConfiguration's default target type.
func (c *Controller) reconcileRoute(ctx context.Context, key types.NamespacedName) error {
	var route gwv1.HTTPRoute
	if err := c.cache.Get(ctx, key, &route); err != nil {
		return client.IgnoreNotFound(err)
	}
	onALB, err := c.onALBGateway(ctx, &route)
	if err != nil || !onALB {
		return err
	}
	for _, rule := range route.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if b.Port == nil || b.Namespace != nil || (b.Kind != nil && *b.Kind != "Service") {
				continue
			}
			if err := c.bindBackend(ctx, route.Namespace, string(b.Name), int32(*b.Port)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Controller) onALBGateway(ctx context.Context, route *gwv1.HTTPRoute) (bool, error) {
	for _, p := range route.Spec.ParentRefs {
		var gw gwv1.Gateway
		if err := c.cache.Get(ctx, types.NamespacedName{Namespace: route.Namespace, Name: string(p.Name)}, &gw); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return false, err
		}
		var class gwv1.GatewayClass
		if err := c.cache.Get(ctx, types.NamespacedName{Name: string(gw.Spec.GatewayClassName)}, &class); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return false, err
		}
		if class.Spec.ControllerName == "gateway.k8s.aws/alb" {
			return true, nil
		}
	}
	return false, nil
}

func (c *Controller) bindBackend(ctx context.Context, ns, svc string, port int32) error {
	var tgcs lbc.TargetGroupConfigurationList
	if err := c.cache.List(ctx, &tgcs, client.InNamespace(ns)); err != nil {
		return err
	}
	ip := false
	for _, tgc := range tgcs.Items {
		if r := tgc.Spec.TargetReference; r != nil && r.Name == svc {
			tt := tgc.Spec.DefaultConfiguration.TargetType
			ip = tt != nil && *tt == lbc.TargetTypeIP
		}
	}
	if !ip {
		return nil
	}
	arn, err := c.targetGroupTagged(ctx, fmt.Sprintf("%s/%s:%d", ns, svc, port))
	if err != nil || arn == "" {
		return err
	}
	tgb := &lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("k8s-%s-%s-%d", ns, svc, port)},
		Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: arn, TargetType: ptr.To(lbc.TargetTypeIP),
			ServiceRef: lbc.ServiceReference{Name: svc, Port: intstr.FromInt32(port)}},
	}
	if err := c.client.Create(ctx, tgb); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create binding for %s/%s:%d: %w", ns, svc, port, err)
	}
	return nil
}

// targetGroupTagged returns the target group tagged with resource.
func (c *Controller) targetGroupTagged(ctx context.Context, resource string) (string, error) {
	groups, err := c.opts.ELBv2.DescribeTargetGroups(ctx, &awselbv2.DescribeTargetGroupsInput{})
	if err != nil {
		return "", fmt.Errorf("describe target groups: %w", err)
	}
	var arns []string
	for _, g := range groups.TargetGroups {
		arns = append(arns, aws.ToString(g.TargetGroupArn))
	}
	for start := 0; start < len(arns); start += 20 {
		tags, err := c.opts.ELBv2.DescribeTags(ctx, &awselbv2.DescribeTagsInput{ResourceArns: arns[start:min(start+20, len(arns))]})
		if err != nil {
			return "", fmt.Errorf("describe tags: %w", err)
		}
		for _, d := range tags.TagDescriptions {
			for _, t := range d.Tags {
				if aws.ToString(t.Key) == TagResource && aws.ToString(t.Value) == resource {
					return aws.ToString(d.ResourceArn), nil
				}
			}
		}
	}
	return "", nil
}
