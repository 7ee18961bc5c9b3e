package scenario

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/albdrain/albdrain/internal/lbc"
)

// gatewayClassName is the cluster's ALB GatewayClass, shared by the runs.
const gatewayClassName = "aws-alb"

func ensureGatewayClass(ctx context.Context, c client.Client) error {
	class := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: gatewayClassName},
		Spec: gwv1.GatewayClassSpec{ControllerName: lbc.ALBGatewayController}}
	if err := c.Create(ctx, class); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create GatewayClass: %w", err)
	}
	return nil
}

// gatewayObjects put the Service behind an ALB Gateway as ip targets: a
// Gateway, an HTTPRoute to Service port 80, and the Service's
// TargetGroupConfiguration.
func gatewayObjects(ns string) []client.Object {
	return []client.Object{
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns}, Spec: gwv1.GatewaySpec{
			GatewayClassName: gatewayClassName, Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}},
		&gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns}, Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: appName}}},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: appName, Port: ptr.To(gwv1.PortNumber(80))}}}}}}}},
		&lbc.TargetGroupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns}, Spec: lbc.TargetGroupConfigurationSpec{
			TargetReference:      &lbc.TargetReference{Name: appName},
			DefaultConfiguration: lbc.TargetGroupProps{TargetType: ptr.To(lbc.TargetTypeIP)}}},
	}
}
