package fakelbc

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/e2e/albemu"
)

// endpoint is one EndpointSlice entry for a pod of the fixture.
func (f *fixture) endpoint(name, ip string, ready, serving, terminating bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: name, UID: f.pod(name).UID},
	}
}

// slice is the Service's EndpointSlice, written by hand as the EndpointSlice
// controller would (no controller runs here): port "http" resolved to 8080.
func slice(eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abcde", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

// TestRegistrationFollowsEndpointSlices checks the real controller's rules
// on EndpointSlices: ready endpoints are registered, a not-ready one only
// when its pod has the gate and ready containers, and a terminating one is
// deregistered even while it still serves.
func TestRegistrationFollowsEndpointSlices(t *testing.T) {
	f := setupWith(t, true)
	// The pods' own conditions say otherwise: only the slice decides.
	f.runPod("ready", "10.1.0.1", false)
	f.runPod("gated", "10.1.0.2", true, corev1.ContainersReady)
	f.runPod("unready", "10.1.0.3", false, corev1.PodReady, corev1.ContainersReady)
	s := slice(
		f.endpoint("ready", "10.1.0.1", true, true, false),
		f.endpoint("gated", "10.1.0.2", false, false, false),
		f.endpoint("unready", "10.1.0.3", false, false, false),
	)
	f.create(s)
	f.waitState("10.1.0.1", albemu.StateHealthy)
	f.waitState("10.1.0.2", albemu.StateHealthy)
	if h, err := f.emu.TargetHealth(f.arn, albemu.Target{ID: "10.1.0.3", Port: 8080}); err == nil && len(h) > 0 && h[0].State != albemu.StateUnused {
		t.Errorf("a not-ready endpoint without the gate was registered: %+v", h)
	}

	s.Endpoints[0] = f.endpoint("ready", "10.1.0.1", false, true, true)
	if err := f.env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.waitState("10.1.0.1", albemu.StateDraining)
	if got := f.state("10.1.0.2"); got != albemu.StateHealthy {
		t.Errorf("gated target %s after another endpoint terminated, want healthy", got)
	}
}
