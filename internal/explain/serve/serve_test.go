package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/eligibility"
	"github.com/albdrain/albdrain/internal/explain"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/lbc/lbctest"
)

type fixedRegistrations []lbc.Registration

func (f fixedRegistrations) Registrations(context.Context, *corev1.Pod) ([]lbc.Registration, error) {
	return f, nil
}

func pod(name string, mod func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
	if mod != nil {
		mod(p)
	}
	return p
}

func TestHandler(t *testing.T) {
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
	tgb := &lbc.TargetGroupBinding{ObjectMeta: metav1.ObjectMeta{Name: "k8s-web", Namespace: "shop"}, Spec: lbc.TargetGroupBindingSpec{
		TargetGroupARN: "arn:tg/web", TargetType: ptr.To(lbc.TargetTypeIP), ServiceRef: lbc.ServiceReference{Name: "web", Port: intstr.FromInt32(80)}}}
	managed := pod("managed", func(p *corev1.Pod) {
		p.Labels[contract.ManagedLabel] = "true"
		p.Annotations = map[string]string{contract.InjectedKey: `{"mode":"wait","maxHoldSeconds":330,"containers":["app"],"ports":[8080],"services":["web"]}`}
	})
	optedOut := pod("opted-out", func(p *corev1.Pod) { p.Annotations = map[string]string{contract.InjectKey: "disabled"} })
	skipped := pod("skipped", func(p *corev1.Pod) {
		p.Annotations = map[string]string{contract.SkippedKey: "hostNetwork pod: its address and sockets are the node's"}
	})
	skippedHost := pod("skipped-host", func(p *corev1.Pod) {
		p.Spec.HostNetwork = true
		p.Annotations = map[string]string{contract.SkippedKey: "hostNetwork pod: its address and sockets are the node's"}
	})
	noPort := pod("no-port", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Name = "metrics" })
	system := pod("system", func(p *corev1.Pod) { p.Namespace = "kube-system" })
	systemWeb, systemTGB := web.DeepCopy(), tgb.DeepCopy()
	systemWeb.Namespace, systemTGB.Namespace = "kube-system", "kube-system"
	windows := pod("windows", func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} })
	meshed := pod("meshed", func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "linkerd-proxy", Image: "proxy:1"})
	})
	meshedHeld := pod("meshed-held", func(p *corev1.Pod) {
		p.Labels[contract.ManagedLabel] = "true"
		p.Annotations = map[string]string{"sidecar.istio.io/status": "{}",
			contract.InjectedKey: `{"mode":"wait","maxHoldSeconds":330,"containers":["app"],"ports":[8080],"services":["web"]}`}
	})
	unmutated := pod("unmutated", nil)
	alone := pod("alone", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "other"} })
	objs := []client.Object{web, tgb, managed, optedOut, skipped, skippedHost, windows, meshed, meshedHeld, unmutated, alone, noPort, system}
	h := &Handler{Pods: lbctest.IndexedFakeClient(lbctest.Scheme(t), objs...), Finder: lbctest.NewFinder(t, web, tgb, systemWeb, systemTGB),
		Resolver: fixedRegistrations{{TargetGroupARN: "arn:tg/web", Port: 8080}}, Auth: tokens{"reader": nil}, Limit: rate.NewLimiter(rate.Inf, 0)}
	webBackend := []explain.Backend{{Service: "web", TargetPort: "http", TargetGroupBinding: "k8s-web"}}
	tests := []struct {
		name, ns, pod, uid string
		wantCode           int
		want               explain.Explanation
	}{
		{name: "protected", pod: "managed", want: explain.Explanation{Protected: true, Why: "the webhook injected the hold: the pod is behind web", Reason: string(eligibility.ReasonBehindALB),
			Backends: webBackend, TargetGroups: []explain.TargetGroup{{ARN: "arn:tg/web", Port: 8080}}}},
		{name: "opted out", pod: "opted-out", want: explain.Explanation{Why: "the pod opts out with albdrain.io/inject=disabled", Reason: string(eligibility.ReasonOptedOut), Backends: webBackend}},
		{name: "skipped by the webhook", pod: "skipped-host", want: explain.Explanation{Why: "the webhook skipped it: hostNetwork pod: its address and sockets are the node's",
			Reason: string(eligibility.ReasonHostNetwork), Backends: webBackend}},
		{name: "skipped by the webhook, held now", pod: "skipped", want: explain.Explanation{Why: "the webhook skipped it: hostNetwork pod: its address and sockets are the node's; " +
			"it would hold it now: recreate the pod", Reason: string(eligibility.ReasonBehindALB), Backends: webBackend}},
		{name: "a rule skips it now", pod: "windows", want: explain.Explanation{Why: "albdrain cannot hold it: Windows pod: albdrain's helper runs on Linux only", Reason: string(eligibility.ReasonWindows), Backends: webBackend}},
		{name: "a mesh proxy", pod: "meshed", want: explain.Explanation{Why: "albdrain cannot hold it: Linkerd sidecar proxy: albdrain cannot hold a meshed pod yet " +
			"(the proxy takes the load balancer's traffic and is not held)", Reason: string(eligibility.ReasonServiceMesh), Backends: webBackend}},
		{name: "a mesh proxy in a pod held before albdrain knew meshes", pod: "meshed-held", want: explain.Explanation{
			Why: "it carries a hold from an earlier albdrain that cannot protect it: Istio sidecar proxy: albdrain cannot hold a meshed pod yet " +
				"(the proxy takes the load balancer's traffic and is not held)", Reason: string(eligibility.ReasonServiceMesh), Backends: webBackend}},
		{name: "behind a load balancer but never mutated", pod: "unmutated", want: explain.Explanation{Reason: string(eligibility.ReasonBehindALB), Backends: webBackend}},
		{name: "behind nothing", pod: "alone", want: explain.Explanation{Why: "no rule puts it behind an AWS load balancer as an ip target", Reason: string(eligibility.ReasonNoBackend)}},
		{name: "no port serves the target port", pod: "no-port", want: explain.Explanation{Why: "it is behind a load balancer, but no port of the pod serves " +
			"Service web target port http", Reason: string(eligibility.ReasonNoServingPort), Backends: webBackend}},
		{name: "kube-system", ns: "kube-system", pod: "system", want: explain.Explanation{Why: "albdrain never holds pods in kube-system",
			Reason: string(eligibility.ReasonSystemNamespace), Backends: webBackend}},
		{name: "wrong UID", pod: "managed", uid: "guessed", wantCode: http.StatusNotFound},
		{name: "unknown pod", pod: "gone", wantCode: http.StatusNotFound},
		{name: "no UID", pod: "managed", uid: "-", wantCode: http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uid := tc.uid
			switch uid {
			case "":
				uid = "uid-" + tc.pod
			case "-":
				uid = ""
			}
			ns := tc.ns
			if ns == "" {
				ns = "shop"
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, request(ns, tc.pod, uid, "reader"))
			want := tc.wantCode
			if want == 0 {
				want = http.StatusOK
			}
			if rec.Code != want {
				t.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body)
			}
			if want != http.StatusOK {
				if strings.Contains(rec.Body.String(), "web") {
					t.Errorf("refusal leaks the pod's backends: %s", rec.Body)
				}
				return
			}
			var got explain.Explanation
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			tc.want.Namespace, tc.want.Name = ns, tc.pod
			tc.want.ServedAPIs = got.ServedAPIs
			tc.want.Record = got.Record
			if tc.want.Why == "" {
				tc.want.Why = got.Why
				if !strings.Contains(got.Why, "the webhook did not mutate it") {
					t.Errorf("why = %q", got.Why)
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if (got.Record != nil) != (tc.pod == "managed" || tc.pod == "meshed-held") {
				t.Errorf("record = %+v", got.Record)
			}
		})
	}
}

// tokens authorizes by token: the error each known token gets; an unknown
// token is unauthenticated.
type tokens map[string]error

func (m tokens) MayGetPod(_ context.Context, token, _, _ string) error {
	if err, ok := m[token]; ok {
		return err
	}
	return errUnauthenticated
}

func request(ns, name, uid, token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, explain.Path+"?namespace="+ns+"&name="+name+"&uid="+uid, nil)
	if token != "" {
		r.Header.Set(explain.TokenHeader, "Bearer "+token)
	}
	return r
}

func TestHandlerAuthorizesAndLimits(t *testing.T) {
	p := pod("web-1", nil)
	h := &Handler{Pods: lbctest.IndexedFakeClient(lbctest.Scheme(t), p), Finder: lbctest.NewFinder(t),
		Resolver: fixedRegistrations{}, Auth: tokens{"reader": nil, "stranger": errForbidden, "down": errors.New("apiserver unavailable")}}
	tests := []struct {
		name     string
		header   string
		wantCode int
	}{
		{name: "no token", wantCode: http.StatusUnauthorized},
		{name: "not a bearer token", header: "Basic cmVhZGVyOg==", wantCode: http.StatusUnauthorized},
		{name: "unknown token", header: "Bearer forged", wantCode: http.StatusUnauthorized},
		{name: "may not get the pod", header: "Bearer stranger", wantCode: http.StatusForbidden},
		{name: "reviews failing", header: "Bearer down", wantCode: http.StatusServiceUnavailable},
		{name: "may get the pod", header: "Bearer reader", wantCode: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.Limit = rate.NewLimiter(rate.Inf, 0)
			r := request("shop", "web-1", string(p.UID), "")
			if tc.header != "" {
				r.Header.Set(explain.TokenHeader, tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.wantCode {
				t.Errorf("status %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
		})
	}
	t.Run("over the rate: refused before any review", func(t *testing.T) {
		counted := &countingAuth{}
		h.Auth, h.Limit = counted, rate.NewLimiter(rate.Every(time.Hour), 2)
		var codes []int
		for range 4 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, request("shop", "web-1", string(p.UID), "reader"))
			codes = append(codes, rec.Code)
		}
		want := []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests, http.StatusTooManyRequests}
		if d := cmp.Diff(want, codes); d != "" || counted.n != 2 {
			t.Errorf("codes (-want +got):\n%s\nreviews: %d, want 2", d, counted.n)
		}
	})
}

type countingAuth struct{ n int }

func (c *countingAuth) MayGetPod(context.Context, string, string, string) error { c.n++; return nil }
