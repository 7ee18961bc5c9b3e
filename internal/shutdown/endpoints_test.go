package shutdown

import (
	"net/netip"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

func TestReady(t *testing.T) {
	endpoint := func(ready *bool, addrs ...string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	}
	slice := func(eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
		return discoveryv1.EndpointSlice{Endpoints: eps}
	}
	tests := []struct {
		name   string
		ip     string
		slices []discoveryv1.EndpointSlice
		want   bool
	}{
		{"ready", "10.0.0.1", []discoveryv1.EndpointSlice{slice(endpoint(ptr.To(true), "10.0.0.1"))}, true},
		{"no ready condition counts as ready", "10.0.0.1", []discoveryv1.EndpointSlice{slice(endpoint(nil, "10.0.0.1"))}, true},
		{"not ready (terminating)", "10.0.0.1", []discoveryv1.EndpointSlice{slice(endpoint(ptr.To(false), "10.0.0.1"), endpoint(ptr.To(true), "10.0.0.2"))}, false},
		{"gone", "10.0.0.1", []discoveryv1.EndpointSlice{slice(endpoint(ptr.To(true), "10.0.0.2"))}, false},
		{"no slices", "10.0.0.1", nil, false},
		{"in a second slice", "10.0.0.1", []discoveryv1.EndpointSlice{slice(endpoint(ptr.To(true), "10.0.0.2")), slice(endpoint(ptr.To(true), "10.0.0.1"))}, true},
		{"IPv6 spelt differently", "fd00::1", []discoveryv1.EndpointSlice{slice(endpoint(ptr.To(true), "fd00:0:0::0001"))}, true},
		{"unparsable address skipped", "10.0.0.1", []discoveryv1.EndpointSlice{slice(endpoint(ptr.To(true), "albdrain.example"))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Ready(tt.slices, netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("Ready = %v, want %v", got, tt.want)
			}
		})
	}
}
