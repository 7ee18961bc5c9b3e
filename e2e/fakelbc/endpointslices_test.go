package fakelbc

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/lbc"
)

// endpoint is one EndpointSlice entry for a pod of the fixture; a nil
// condition is left out of the slice.
func (f *fixture) endpoint(name, ip string, ready, terminating *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: ready, Terminating: terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: name},
	}
}

// slice is Service svc's EndpointSlice, written by hand as the EndpointSlice
// controller would (no controller runs here): port "http" resolved to 8080.
func slice(svc string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-abcde", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

// waitResolved waits until the binding resolves to exactly want.
func (f *fixture) waitResolved(binding string, want []string) {
	f.t.Helper()
	var got []string
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		eps, err := f.ctl.resolve(ctx, f.binding(binding))
		if err != nil {
			return false, err
		}
		got = got[:0]
		for _, e := range eps {
			got = append(got, e.ip)
		}
		slices.Sort(got)
		return slices.Equal(got, want), nil
	})
	if err != nil {
		f.t.Errorf("binding %s resolves to %v, want %v: %v", binding, got, want, err)
	}
}

// TestEndpointRules checks the rules of backend.defaultEndpointResolver.
// resolvePodEndpointsWithEndpointsData on EndpointSlices: a ready endpoint
// (or one without the ready condition) is registered; a not-ready one
// only when its pod's containers are ready, its node is Ready and it is
// not terminating, gate or not; one whose pod is not in the cache is
// skipped; endpoints on a node of Unknown readiness are used only when
// nothing else qualifies (EndpointsFailOpen).
func TestEndpointRules(t *testing.T) {
	f := setupWith(t, Options{Requeue: 50 * time.Millisecond, EndpointSlices: true})
	f.node("node-unknown", corev1.ConditionUnknown)
	f.node("node-down", corev1.ConditionFalse)
	yes, no := ptr.To(true), ptr.To(false)
	f.runPod("ready", "10.1.0.1", false)
	f.runPod("no-ready-field", "10.1.0.2", false)
	f.runPod("plain", "10.1.0.3", false, corev1.ContainersReady)
	f.runPod("gated", "10.1.0.4", true, corev1.ContainersReady)
	f.runPod("starting", "10.1.0.5", true)
	f.runPod("leaving", "10.1.0.6", false, corev1.ContainersReady)
	f.runPodOn("down", "10.1.0.7", "node-down", false, corev1.ContainersReady)
	f.runPodOn("unknown", "10.1.0.8", "node-unknown", false, corev1.ContainersReady)
	f.create(slice("web",
		f.endpoint("ready", "10.1.0.1", yes, no),
		f.endpoint("no-ready-field", "10.1.0.2", nil, nil),
		f.endpoint("plain", "10.1.0.3", no, no),
		f.endpoint("gated", "10.1.0.4", no, no),
		f.endpoint("starting", "10.1.0.5", no, no),
		f.endpoint("leaving", "10.1.0.6", no, yes),
		f.endpoint("down", "10.1.0.7", no, no),
		f.endpoint("unknown", "10.1.0.8", no, no),
		f.endpoint("not-cached", "10.1.0.9", yes, no),
	))
	f.waitResolved("web", []string{"10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"})
	f.waitState("10.1.0.3", "healthy")

	// Only the pod on the Unknown node qualifies: it is used.
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "lone", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "lone"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	})
	f.create(&lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "lone", Namespace: ns},
		Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: f.arn, TargetType: ptr.To(lbc.TargetTypeIP),
			ServiceRef: lbc.ServiceReference{Name: "lone", Port: intstr.FromInt32(80)}},
	})
	f.create(slice("lone", f.endpoint("unknown", "10.1.0.8", no, no), f.endpoint("down", "10.1.0.7", no, no)))
	f.waitResolved("lone", []string{"10.1.0.8"})
}
