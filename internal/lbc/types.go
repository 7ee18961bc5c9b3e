package lbc

// The part of the AWS Load Balancer Controller's elbv2.k8s.aws/v1beta1 API
// that albdrain reads: TargetGroupBinding. It is written out here rather than
// imported so albdrain does not pull in the controller's whole dependency
// tree for four fields; controller-gen writes its DeepCopy methods
// (zz_generated.deepcopy.go, `make generate`).

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// GroupVersion is the API group and version of TargetGroupBinding.
var GroupVersion = schema.GroupVersion{Group: "elbv2.k8s.aws", Version: "v1beta1"}

// AddToScheme registers the LBC types albdrain reads, and the Gateway API's,
// with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &TargetGroupBinding{}, &TargetGroupBindingList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	s.AddKnownTypes(GatewayGroupVersion, &TargetGroupConfiguration{}, &TargetGroupConfigurationList{},
		&LoadBalancerConfiguration{}, &LoadBalancerConfigurationList{})
	metav1.AddToGroupVersion(s, GatewayGroupVersion)
	if err := gwv1.Install(s); err != nil {
		return err
	}
	return gwv1beta1.Install(s)
}

// TargetType is how a target group addresses its targets.
type TargetType string

const (
	// TargetTypeIP registers pod IPs directly: the mode albdrain protects.
	TargetTypeIP TargetType = "ip"
	// TargetTypeInstance registers nodes; the pod's own termination is not what the ALB sees.
	TargetTypeInstance TargetType = "instance"
)

// ServiceReference names the Service whose endpoints a binding registers.
// +kubebuilder:object:generate=true
type ServiceReference struct {
	Name string             `json:"name"`
	Port intstr.IntOrString `json:"port"`
}

// TargetGroupBindingSpec is the subset of the binding's spec albdrain uses.
// +kubebuilder:object:generate=true
type TargetGroupBindingSpec struct {
	TargetGroupARN string           `json:"targetGroupARN,omitempty"`
	TargetType     *TargetType      `json:"targetType,omitempty"`
	ServiceRef     ServiceReference `json:"serviceRef"`
}

// TargetGroupBindingStatus is the binding's status as the LBC writes it.
// +kubebuilder:object:generate=true
type TargetGroupBindingStatus struct {
	// ObservedGeneration is the metadata.generation the LBC last reconciled
	// successfully; it writes it only after registering the targets.
	ObservedGeneration *int64 `json:"observedGeneration,omitempty"`
}

// TargetGroupBinding ties a Service port to an ELBv2 target group.
// +kubebuilder:object:root=true
// +kubebuilder:object:generate=true
type TargetGroupBinding struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TargetGroupBindingSpec   `json:"spec"`
	Status TargetGroupBindingStatus `json:"status,omitempty"`
}

// TargetGroupBindingList is a list of TargetGroupBindings.
// +kubebuilder:object:root=true
// +kubebuilder:object:generate=true
type TargetGroupBindingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []TargetGroupBinding `json:"items"`
}
