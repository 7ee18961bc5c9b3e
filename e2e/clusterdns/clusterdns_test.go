package clusterdns

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestResolve resolves names through Go's own resolver, as the in-pod
// helper does, against Services of a fake client.
func TestResolve(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "albdrain", Namespace: "albdrain-system"}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.42"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "headless", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}},
	).Build()
	s, err := Start("127.0.0.1:0", c, "cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.Addr().String())
	}}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{name: "albdrain.albdrain-system.svc.cluster.local.", want: []string{"10.0.0.42"}},
		{name: "ALBDRAIN.albdrain-system.svc.cluster.local.", want: []string{"10.0.0.42"}},
		{name: "missing.albdrain-system.svc.cluster.local."},
		{name: "headless.default.svc.cluster.local."},
		{name: "albdrain.albdrain-system.svc.other.local."},
		{name: "a.b.albdrain-system.svc.cluster.local."},
		{name: "example.com."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.LookupHost(context.Background(), tc.name)
			if tc.want == nil {
				if dnsErr, ok := errors.AsType[*net.DNSError](err); !ok || !dnsErr.IsNotFound {
					t.Fatalf("LookupHost = %v, %v; want not found", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("LookupHost (-want +got):\n%s", diff)
			}
		})
	}
}
