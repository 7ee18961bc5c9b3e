// Package lbc is albdrain's one home for what the AWS Load Balancer
// Controller (LBC) does with pods: its TargetGroupBinding API, the Ingress
// classes and annotations it reads, the NLB Services it manages, the Gateway
// API routes its Gateways serve and the gateway configuration that sets
// their target type, its controller-wide default target type, how it picks a
// Service's pods and the pod port it registers, the readiness-gate condition
// it sets and the tags it puts on target groups.
//
// Both halves of albdrain ask it the same question, "which ip target groups
// serve this pod, on which container ports, behind which kind of load
// balancer": the admission webhook before it mutates a pod, the drain
// watcher before it holds one. Finder answers from the manager's cache
// through field indexes, so neither half lists a whole namespace. The rules
// that need an optional API (TargetGroupBinding, the Gateway API) are on
// while the cluster serves it; NewFinder notices CRDs installed later.
package lbc

// Names of the LBC's API that albdrain reads.
const (
	// ALBController is the IngressClass controller name of the LBC.
	ALBController = "ingress.k8s.aws/alb"
	// LegacyClassAnnotation selects an ingress class before spec.ingressClassName existed.
	LegacyClassAnnotation = "kubernetes.io/ingress.class"
	// TargetTypeAnnotation chooses ip or instance targets, on the Ingress or the Service.
	TargetTypeAnnotation = "alb.ingress.kubernetes.io/target-type"
	// DefaultClassAnnotation marks the IngressClass used by Ingresses that name none.
	DefaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
	// ReadinessGatePrefix is the condition type prefix the LBC sets from
	// target health, followed by the TargetGroupBinding's name. A gate of any
	// other name would never turn true and would block registration.
	ReadinessGatePrefix = "target-health.elbv2.k8s.aws/"
)

// Tags the load balancer controllers put on the target groups they create.
const (
	// TagCluster names the cluster of a target group the LBC created.
	TagCluster = "elbv2.k8s.aws/cluster"
	// TagResource is the LBC's "namespace/ingress-service:port" of a target group.
	TagResource = "ingress.k8s.aws/resource"
	// TagV1Namespace, TagV1ServiceName and TagV1ServicePort are the old
	// aws-alb-ingress-controller's (v1) tags.
	TagV1Namespace   = "kubernetes.io/namespace"
	TagV1ServiceName = "kubernetes.io/service-name"
	TagV1ServicePort = "kubernetes.io/service-port"
)

// The API types' DeepCopy methods are generated; controller-gen is pinned by
// its wrapper module, outside albdrain's dependency graph.
//go:generate go run -modfile=../../e2e/tools/controller-gen/go.mod sigs.k8s.io/controller-tools/cmd/controller-gen object paths=.
