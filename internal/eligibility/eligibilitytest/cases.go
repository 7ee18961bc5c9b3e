// Package eligibilitytest is the table of pods that eligibility's decision is
// tested on, shared by its callers' tests: the webhook acts on each case as
// the table says, and explain tells the same.
package eligibilitytest

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/eligibility"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/lbc/lbctest"
)

// Case is one pod and the decision the rules come to for it.
type Case struct {
	Name      string
	Namespace string
	Pod       *corev1.Pod
	// BrokenLookup decides the case with a Finder whose lookups fail.
	BrokenLookup bool
	// Want is the decision, without its Match and Err.
	Want eligibility.Decision
}

// Namespace is the namespace of most cases, where Service web is behind a
// TargetGroupBinding with ip targets and Service legacy behind one with
// instance targets.
const Namespace = "shop"

// InvalidMaxHold is a max-hold annotation the webhook refuses.
const InvalidMaxHold = "soon"

// Overrides stands in for the webhook's check of a pod's own annotations
// (inject.Options.CheckOverrides), which the cases' order depends on but
// which is tested with the mutation: it refuses InvalidMaxHold.
func Overrides(annotations map[string]string) error {
	if annotations[contract.MaxHoldKey] == InvalidMaxHold {
		return errors.New("annotation " + contract.MaxHoldKey + ": not a number")
	}
	return nil
}

// Objects are the cluster the cases are decided in: in Namespace and in
// kube-system alike, Service web behind a TargetGroupBinding with ip targets
// (reconciled by a load balancer controller); in Namespace, Service legacy
// behind one with instance targets.
func Objects() []client.Object {
	var objs []client.Object
	for _, ns := range []string{Namespace, metav1.NamespaceSystem} {
		objs = append(objs, service(ns, "web"), binding(ns, "web", lbc.TargetTypeIP))
	}
	return append(objs, service(Namespace, "legacy"), binding(Namespace, "legacy", lbc.TargetTypeInstance))
}

func service(ns, name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
}

func binding(ns, svc string, tt lbc.TargetType) *lbc.TargetGroupBinding {
	return &lbc.TargetGroupBinding{ObjectMeta: metav1.ObjectMeta{Name: "k8s-" + svc, Namespace: ns, Generation: 1},
		Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: "arn:tg/" + svc, TargetType: ptr.To(tt),
			ServiceRef: lbc.ServiceReference{Name: svc, Port: intstr.FromInt32(80)}},
		Status: lbc.TargetGroupBindingStatus{ObservedGeneration: ptr.To[int64](1)}}
}

// Finder is an lbc.Finder over objs, every optional API served; broken, its
// cache lacks the indexes Find reads through, so every lookup fails.
func Finder(tb testing.TB, broken bool, objs ...client.Object) *lbc.Finder {
	if !broken {
		return lbctest.NewFinder(tb, objs...)
	}
	c := fake.NewClientBuilder().WithScheme(lbctest.Scheme(tb)).WithObjects(objs...).Build()
	return &lbc.Finder{Reader: c, Served: lbc.NewAPISet(lbc.AllAPIs...)}
}

// pod is a pod of Service web, serving its target port http from container app.
func pod(name string, mod func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}}}
	if mod != nil {
		mod(p)
	}
	return p
}

func annotate(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func both(fs ...func(*corev1.Pod)) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		for _, f := range fs {
			f(p)
		}
	}
}

func labelled(app string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Labels["app"] = app } }

func windows(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} }

func hostNetwork(p *corev1.Pod) { p.Spec.HostNetwork = true }

// metricsOnly leaves the pod no port named http.
func metricsOnly(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Name = "metrics" }

// The decisions' texts, as the webhook records and explain shows them.
const (
	windowsWhy  = "Windows pod: albdrain's helper runs on Linux only"
	hostWhy     = "hostNetwork pod: its address and sockets are the node's"
	meshWhy     = " sidecar proxy: albdrain cannot hold a meshed pod yet (the proxy takes the load balancer's traffic and is not held)"
	cannot      = "albdrain cannot hold it: "
	optedOutWhy = "the pod opts out with albdrain.io/inject=disabled"
	noBackend   = "no rule puts it behind an AWS load balancer as an ip target"
	injectedWhy = "it serves ip targets of a load balancer behind Service web"
	noServing   = "it is behind a load balancer, but no port of the pod serves Service web target port http"
	invalid     = "its albdrain annotations are invalid: annotation albdrain.io/max-hold-seconds: not a number"
)

func skipped(reason eligibility.Reason, why string) eligibility.Decision {
	return eligibility.Decision{Result: eligibility.ResultSkipped, Reason: reason, Why: why}
}

func noted(reason eligibility.Reason, why, note string) eligibility.Decision {
	return eligibility.Decision{Result: eligibility.ResultSkipped, Reason: reason, Why: why, Note: note}
}

// Cases covers every reason, and the order of the rules where two apply.
func Cases() []Case {
	invalidMaxHold := annotate(contract.MaxHoldKey, InvalidMaxHold)
	optOut := annotate(contract.InjectKey, "disabled")
	istio := annotate("sidecar.istio.io/status", "{}")
	linkerd := func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "linkerd-proxy", Image: "proxy:1"})
	}
	sidecarServes := func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "proxy:1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9000}}}}
		metricsOnly(p)
	}
	cases := []Case{
		{Name: "behind an ip target group", Pod: pod("web", nil),
			Want: eligibility.Decision{Result: eligibility.ResultInjected, Reason: eligibility.ReasonBehindALB, Why: injectedWhy}},
		{Name: "served through a native sidecar", Pod: pod("sidecar", sidecarServes),
			Want: eligibility.Decision{Result: eligibility.ResultInjected, Reason: eligibility.ReasonBehindALB, Why: injectedWhy}},
		{Name: "opted out", Pod: pod("opted-out", optOut), Want: skipped(eligibility.ReasonOptedOut, optedOutWhy)},
		{Name: "opted out in capitals", Pod: pod("opted-out-caps", annotate(contract.InjectKey, "Disabled")),
			Want: skipped(eligibility.ReasonOptedOut, optedOutWhy)},
		{Name: "kube-system", Namespace: metav1.NamespaceSystem, Pod: pod("system", nil),
			Want: skipped(eligibility.ReasonSystemNamespace, "albdrain never holds pods in kube-system")},
		{Name: "lookup failed", Pod: pod("lookup", nil), BrokenLookup: true,
			Want: eligibility.Decision{Result: eligibility.ResultError, Reason: eligibility.ReasonLookupFailed}},
		{Name: "behind nothing", Pod: pod("alone", labelled("other")), Want: skipped(eligibility.ReasonNoBackend, noBackend)},
		{Name: "instance targets only", Pod: pod("legacy", labelled("legacy")), Want: noted(eligibility.ReasonNotIPTarget,
			"it is behind a load balancer, but not as an ip target: TargetGroupBinding k8s-legacy targets instance", "TargetGroupBinding k8s-legacy targets instance")},
		{Name: "windows", Pod: pod("windows", windows), Want: noted(eligibility.ReasonWindows, cannot+windowsWhy, windowsWhy)},
		{Name: "hostNetwork", Pod: pod("host", hostNetwork), Want: noted(eligibility.ReasonHostNetwork, cannot+hostWhy, hostWhy)},
		{Name: "Istio sidecar", Pod: pod("istio", istio), Want: noted(eligibility.ReasonServiceMesh, cannot+"Istio"+meshWhy, "Istio"+meshWhy)},
		{Name: "Linkerd proxy", Pod: pod("linkerd", linkerd), Want: noted(eligibility.ReasonServiceMesh, cannot+"Linkerd"+meshWhy, "Linkerd"+meshWhy)},
		{Name: "invalid override", Pod: pod("invalid", invalidMaxHold),
			Want: eligibility.Decision{Result: eligibility.ResultDenied, Reason: eligibility.ReasonInvalidOverride, Why: invalid}},
		{Name: "no serving port", Pod: pod("no-port", metricsOnly), Want: skipped(eligibility.ReasonNoServingPort, noServing)},

		// Where two rules apply, the first decides.
		{Name: "opted out before a failing lookup", Pod: pod("opted-out-lookup", optOut), BrokenLookup: true,
			Want: skipped(eligibility.ReasonOptedOut, optedOutWhy)},
		{Name: "kube-system before a failing lookup", Namespace: metav1.NamespaceSystem, Pod: pod("system-lookup", nil), BrokenLookup: true,
			Want: skipped(eligibility.ReasonSystemNamespace, "albdrain never holds pods in kube-system")},
		{Name: "opted out before its kind", Pod: pod("opted-out-host", both(optOut, hostNetwork)), Want: skipped(eligibility.ReasonOptedOut, optedOutWhy)},
		{Name: "backends before its kind", Pod: pod("alone-windows", both(labelled("other"), windows)), Want: skipped(eligibility.ReasonNoBackend, noBackend)},
		{Name: "its kind before its overrides", Pod: pod("host-invalid", both(hostNetwork, invalidMaxHold)),
			Want: noted(eligibility.ReasonHostNetwork, cannot+hostWhy, hostWhy)},
		{Name: "opted out before its overrides", Pod: pod("opted-out-invalid", both(optOut, invalidMaxHold)), Want: skipped(eligibility.ReasonOptedOut, optedOutWhy)},
		{Name: "overrides before its ports", Pod: pod("no-port-invalid", both(metricsOnly, invalidMaxHold)),
			Want: eligibility.Decision{Result: eligibility.ResultDenied, Reason: eligibility.ReasonInvalidOverride, Why: invalid}},
	}
	for i := range cases {
		if cases[i].Namespace == "" {
			cases[i].Namespace = Namespace
		}
	}
	return cases
}
