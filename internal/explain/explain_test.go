package explain

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/drain/targetgroups"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/lbc/lbctest"
)

type fixedTargets []targetgroups.Target

func (f fixedTargets) Targets(context.Context, *corev1.Pod) ([]targetgroups.Target, error) {
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
	windows := pod("windows", func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} })
	unmutated := pod("unmutated", nil)
	alone := pod("alone", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "other"} })
	objs := []client.Object{web, tgb, managed, optedOut, skipped, windows, unmutated, alone}
	h := &Handler{Pods: lbctest.IndexedFakeClient(lbctest.Scheme(t), objs...), Finder: lbctest.NewFinder(t, web, tgb),
		Resolver: fixedTargets{{TargetGroupARN: "arn:tg/web", Port: 8080}}}
	webBackend := []Backend{{Service: "web", TargetPort: "http", TargetGroupBinding: "k8s-web"}}
	tests := []struct {
		name, pod, uid string
		wantCode       int
		want           Explanation
	}{
		{name: "protected", pod: "managed", want: Explanation{Protected: true, Why: "the webhook injected the hold: the pod is behind web",
			Backends: webBackend, TargetGroups: []TargetGroup{{ARN: "arn:tg/web", Port: 8080}}}},
		{name: "opted out", pod: "opted-out", want: Explanation{Why: "the pod opts out with albdrain.io/inject=disabled", Backends: webBackend}},
		{name: "skipped by the webhook", pod: "skipped", want: Explanation{Why: "the webhook skipped it: hostNetwork pod: its address and sockets are the node's", Backends: webBackend}},
		{name: "a rule skips it now", pod: "windows", want: Explanation{Why: "albdrain cannot hold it: Windows pod: albdrain's helper runs on Linux only", Backends: webBackend}},
		{name: "behind a load balancer but never mutated", pod: "unmutated", want: Explanation{Backends: webBackend}},
		{name: "behind nothing", pod: "alone", want: Explanation{Why: "no rule puts it behind an AWS load balancer as an ip target"}},
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
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path+"?namespace=shop&name="+tc.pod+"&uid="+uid, nil))
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
			var got Explanation
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			tc.want.Namespace, tc.want.Name = "shop", tc.pod
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
			if (got.Record != nil) != (tc.pod == "managed") {
				t.Errorf("record = %+v", got.Record)
			}
		})
	}
}
