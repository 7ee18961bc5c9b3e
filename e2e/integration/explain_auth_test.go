package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/explain"
)

// serviceAccountToken creates a ServiceAccount in ns and returns a token of
// it; mayRead grants it get on pods in ns.
func serviceAccountToken(t *testing.T, env *kubetest.Env, ns, name string, mayRead bool) string {
	t.Helper()
	ctx := context.Background()
	mustCreate(t, env.Client, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
	if mayRead {
		mustCreate(t, env.Client, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
		}})
		mustCreate(t, env.Client, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}}})
	}
	tr, err := kubernetes.NewForConfigOrDie(env.Config).CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// proxiedManager gives the manager a Service the apiserver's service proxy
// can reach: the apiserver refuses loopback endpoints, so a reverse proxy on
// this host's first other address forwards to the manager's loopback
// webhook server, headers untouched. The asker gets the chart's explain
// Role: get on the manager Service's services/proxy.
func proxiedManager(t *testing.T, env *kubetest.Env, asker rbacv1.Subject) explain.Manager {
	t.Helper()
	ip := hostAddress(t)
	wio := env.Environment.WebhookInstallOptions
	target := &url.URL{Scheme: "https", Host: net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort))}
	rp := httputil.NewSingleHostReverseProxy(target)
	// The hop to the manager is this test's own; its CA is checked in TestExplain.
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // loopback hop
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go func() { _ = srv.ServeTLS(ln, wio.LocalServingCertDir+"/tls.crt", wio.LocalServingCertDir+"/tls.key") }()
	t.Cleanup(func() { _ = srv.Close() })
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	const ns, name = "albdrain", "albdrain"
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, env.Client, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "albdrain-explain", Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services/proxy"}, ResourceNames: []string{"https:" + name + ":443"}, Verbs: []string{"get"}}}})
	mustCreate(t, env.Client, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "albdrain-explain", Namespace: ns},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "albdrain-explain"}, Subjects: []rbacv1.Subject{asker}})
	mustCreate(t, env.Client, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "webhook", Port: 443, TargetPort: intstr.FromInt32(port)}}}})
	// The service proxy only dials endpoints that are a pod's address.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + "-0", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "manager", Image: "albdrain:test"}}}}
	mustCreate(t, env.Client, pod)
	pod.Status.PodIP, pod.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, env.Client, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod.Name}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("webhook"), Port: ptr.To(port)}},
	})
	return explain.Manager{Namespace: ns, Service: name, Port: "443"}
}

// hostAddress is an IPv4 address of this host other than loopback.
func hostAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Fatal(fmt.Errorf("no IPv4 address but loopback: the apiserver's service proxy needs one"))
	return ""
}
