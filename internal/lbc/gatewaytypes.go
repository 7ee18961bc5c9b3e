package lbc

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The part of the LBC's gateway.k8s.aws/v1beta1 API that decides a Gateway
// backend's target type, written out like TargetGroupBinding. The LBC serves
// v1beta1 from 2.13 on (later releases serve v1 too, with the same fields).

// GatewayGroupVersion is the API group and version of the LBC's gateway configuration.
var GatewayGroupVersion = schema.GroupVersion{Group: "gateway.k8s.aws", Version: "v1beta1"}

// Controller names of the LBC's GatewayClasses.
const (
	ALBGatewayController = "gateway.k8s.aws/alb"
	NLBGatewayController = "gateway.k8s.aws/nlb"
)

// MergePreferGateway makes a Gateway's LoadBalancerConfiguration win over
// its GatewayClass's; the default is the other way round.
const MergePreferGateway = "prefer-gateway"

// TargetReference names the object a TargetGroupConfiguration configures;
// a nil Kind means Service.
// +kubebuilder:object:generate=true
type TargetReference struct {
	Group *string `json:"group,omitempty"`
	Kind  *string `json:"kind,omitempty"`
	Name  string  `json:"name"`
}

// TargetGroupProps is the subset of a target group's properties albdrain reads.
// +kubebuilder:object:generate=true
type TargetGroupProps struct {
	TargetType *TargetType `json:"targetType,omitempty"`
}

// RouteIdentifier picks the routes a RouteConfiguration applies to; empty
// fields match any.
// +kubebuilder:object:generate=true
type RouteIdentifier struct {
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// RouteConfiguration overrides the defaults for some routes.
// +kubebuilder:object:generate=true
type RouteConfiguration struct {
	RouteIdentifier  RouteIdentifier  `json:"routeIdentifier"`
	TargetGroupProps TargetGroupProps `json:"targetGroupProps"`
}

// TargetGroupConfigurationSpec is the subset of the spec albdrain reads.
// +kubebuilder:object:generate=true
type TargetGroupConfigurationSpec struct {
	TargetReference      *TargetReference     `json:"targetReference,omitempty"`
	DefaultConfiguration TargetGroupProps     `json:"defaultConfiguration,omitempty"`
	RouteConfigurations  []RouteConfiguration `json:"routeConfigurations,omitempty"`
}

// TargetGroupConfiguration configures the target groups the LBC makes for a
// Service behind a Gateway, or, without targetReference, serves as a
// Gateway's default.
// +kubebuilder:object:root=true
// +kubebuilder:object:generate=true
type TargetGroupConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec TargetGroupConfigurationSpec `json:"spec,omitempty"`
}

// TargetGroupConfigurationList is a list of TargetGroupConfigurations.
// +kubebuilder:object:root=true
// +kubebuilder:object:generate=true
type TargetGroupConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []TargetGroupConfiguration `json:"items"`
}

// LocalName names an object in the referrer's namespace.
// +kubebuilder:object:generate=true
type LocalName struct {
	Name string `json:"name"`
}

// LoadBalancerConfigurationSpec is the subset of the spec albdrain reads.
// +kubebuilder:object:generate=true
type LoadBalancerConfigurationSpec struct {
	// MergingMode is honoured on a GatewayClass's configuration only.
	MergingMode                     *string    `json:"mergingMode,omitempty"`
	DefaultTargetGroupConfiguration *LocalName `json:"defaultTargetGroupConfiguration,omitempty"`
}

// LoadBalancerConfiguration configures a Gateway's or GatewayClass's load balancer.
// +kubebuilder:object:root=true
// +kubebuilder:object:generate=true
type LoadBalancerConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec LoadBalancerConfigurationSpec `json:"spec,omitempty"`
}

// LoadBalancerConfigurationList is a list of LoadBalancerConfigurations.
// +kubebuilder:object:root=true
// +kubebuilder:object:generate=true
type LoadBalancerConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []LoadBalancerConfiguration `json:"items"`
}
