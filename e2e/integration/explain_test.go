package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/explain"
	"github.com/albdrain/albdrain/internal/lbc"
)

// TestExplain asks the manager about pods the way the kubectl plugin does:
// the pod read from the apiserver with the caller's credentials, the
// question sent to the manager's TLS server. (The plugin goes through the
// apiserver's service proxy, which cannot reach a loopback manager: the
// apiserver refuses loopback endpoints.)
func TestExplain(t *testing.T) {
	wh, err := cluster.WebhookConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	env := kubetest.Start(t, kubetest.WithTargetGroupBindingCRD(), kubetest.WithMutatingWebhooks(wh))
	cl := env.Client
	ctx := context.Background()
	const ns = "shop"
	mustCreate(t, cl, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{contract.InjectKey: "enabled"}}})
	mustCreate(t, cl, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}})
	const arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1"
	mustCreate(t, cl, &lbc.TargetGroupBinding{ObjectMeta: metav1.ObjectMeta{Name: "k8s-web", Namespace: ns},
		Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: arn, TargetType: ptr.To(lbc.TargetTypeIP),
			ServiceRef: lbc.ServiceReference{Name: "web", Port: intstr.FromInt32(80)}}})
	startManager(t, env)
	reader := serviceAccountToken(t, env, ns, "reader", true)
	ask := directQuerier(t, env, reader)
	pods, err := explain.PodsOf(env.Config)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("protected pod: backends and the watcher's target group", func(t *testing.T) {
		pod := restrictedPod(ns, "web-1")
		mustCreate(t, cl, pod)
		ex, err := explain.Ask(ctx, pods, ask, ns, "web-1")
		if err != nil {
			t.Fatal(err)
		}
		if !ex.Protected || len(ex.TargetGroups) != 1 || ex.TargetGroups[0] != (explain.TargetGroup{ARN: arn, Port: 8080}) {
			t.Errorf("explanation = %+v", ex)
		}
		var out strings.Builder
		if err := ex.Write(&out); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"protected by albdrain", "via TargetGroupBinding k8s-web", arn + " port 8080"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("text does not say %q:\n%s", want, out.String())
			}
		}
	})

	t.Run("hostNetwork pod: not protected, and why", func(t *testing.T) {
		pod := restrictedPod(ns, "web-host")
		pod.Spec.HostNetwork = true
		mustCreate(t, cl, pod)
		ex, err := explain.Ask(ctx, pods, ask, ns, "web-host")
		if err != nil {
			t.Fatal(err)
		}
		if ex.Protected || !strings.Contains(ex.Why, "hostNetwork") || len(ex.TargetGroups) != 0 {
			t.Errorf("explanation = %+v", ex)
		}
	})

	t.Run("only a caller whose token may get the pod is answered", func(t *testing.T) {
		pod := &corev1.Pod{}
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-1"}, pod); err != nil {
			t.Fatal(err)
		}
		query := map[string]string{"namespace": ns, "name": "web-1", "uid": string(pod.UID)}
		for _, tc := range []struct{ name, token, want string }{
			{"no token", "", "401"},
			{"a forged token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "401"},
			{"a ServiceAccount without access to pods", serviceAccountToken(t, env, ns, "stranger", false), "403"},
		} {
			if _, err := directQuerier(t, env, tc.token)(ctx, query); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
			}
		}
	})

	t.Run("the plugin's question through the apiserver's service proxy", func(t *testing.T) {
		rc := rest.AnonymousClientConfig(env.Config)
		rc.BearerToken = reader
		m := proxiedManager(t, env, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "reader", Namespace: ns})
		ask, err := explain.ViaServiceProxy(rc, m)
		if err != nil {
			t.Fatal(err)
		}
		readerPods, err := explain.PodsOf(rc)
		if err != nil {
			t.Fatal(err)
		}
		var ex explain.Explanation
		// Until the apiserver's informer has the EndpointSlice, it has no endpoint.
		waitFor(t, "an answer through the service proxy", func() bool {
			ex, err = explain.Ask(ctx, readerPods, ask, ns, "web-1")
			if err != nil && !strings.Contains(err.Error(), "no endpoints available") {
				t.Fatal(err)
			}
			return err == nil
		})
		if !ex.Protected {
			t.Errorf("explanation = %+v", ex)
		}
	})

	t.Run("a pod named without its UID is not explained", func(t *testing.T) {
		_, err := ask(ctx, map[string]string{"namespace": ns, "name": "web-1", "uid": "3f1c1a55-0000-4000-8000-000000000000"})
		if err == nil || !strings.Contains(err.Error(), "no such pod") {
			t.Errorf("answer for a guessed UID: %v, want no such pod", err)
		}
	})
}

// directQuerier asks the manager's webhook server on loopback, as the
// apiserver's service proxy would with the plugin's token, trusting
// envtest's serving CA.
func directQuerier(t *testing.T, env *kubetest.Env, token string) explain.Querier {
	t.Helper()
	wio := env.Environment.WebhookInstallOptions
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(wio.LocalServingCAData) {
		t.Fatal("no serving CA")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	base := fmt.Sprintf("https://%s%s", net.JoinHostPort(wio.LocalServingHost, fmt.Sprint(wio.LocalServingPort)), explain.Path)
	return func(ctx context.Context, query map[string]string) ([]byte, error) {
		q := url.Values{}
		for k, v := range query {
			q.Set(k, v)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		if token != "" {
			req.Header.Set(explain.TokenHeader, "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", resp.Status, body)
		}
		return body, nil
	}
}
