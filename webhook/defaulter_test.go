package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/eligibility"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/lbc/lbctest"
	"github.com/albdrain/albdrain/webhook/inject"
	"github.com/albdrain/albdrain/webhook/webhooktest"
)

type handlerFixture struct {
	handler admission.Handler
	metrics *Metrics
}

// newHandler serves a namespace "shop" whose Service "web" a
// TargetGroupBinding registers, reconciled by a load balancer controller.
func newHandler(t *testing.T) handlerFixture {
	t.Helper()
	return newHandlerWithStatus(t, lbc.TargetGroupBindingStatus{ObservedGeneration: ptr.To[int64](1)})
}

func newHandlerWithStatus(t *testing.T, status lbc.TargetGroupBindingStatus) handlerFixture {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := lbc.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	tgb := &lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tgb-web", Namespace: "shop", Generation: 1},
		Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: "arn:tg", TargetType: ptr.To(lbc.TargetTypeIP),
			ServiceRef: lbc.ServiceReference{Name: "web", Port: intstr.FromInt32(80)}},
		Status: status,
	}
	m := NewMetrics()
	d := &PodDefaulter{
		Finder:  &lbc.Finder{Reader: lbctest.IndexedFakeClient(s, svc, tgb), Served: lbc.NewAPISet(lbc.APITargetGroupBinding)},
		Options: testOptions(),
		Metrics: m,
	}
	return handlerFixture{handler: &admission.Webhook{Handler: NewPatchHandler(s, d)}, metrics: m}
}

func testOptions() inject.Options {
	return inject.Options{Mode: contract.ModeWait, MaxHold: 60 * time.Second, Sleep: 20 * time.Second, Fallback: 10 * time.Second,
		QuietPeriod: time.Second, ShutdownBudget: 10 * time.Second, HelperImage: "albdrain:test", HelperImagePath: "/albdrain-hold",
		WatcherURL: "http://albdrain:8443"}
}

// A pod as the apiserver sends it: no namespace yet, generateName only, and a
// field this k8s.io/api version does not know.
const podJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","labels":{"app":"web"}%s},
"spec":{"futureField":{"x":1},"containers":[{"name":"app","image":"app:1","ports":[{"containerPort":8080}]}]}}`

func podRaw(annotations string) string {
	if annotations != "" {
		annotations = `,"annotations":` + annotations
	}
	return strings.Replace(podJSON, "%s", annotations, 1)
}

func TestHandlerInjectsAndKeepsUnknownFields(t *testing.T) {
	f := newHandler(t)
	resp := f.handler.Handle(context.Background(), webhooktest.Request("shop", podRaw("")))
	if !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
	paths := map[string]string{}
	for _, p := range resp.Patches {
		paths[p.Path] = p.Operation
	}
	for _, want := range []string{"/spec/initContainers", "/spec/volumes", "/spec/readinessGates", "/spec/terminationGracePeriodSeconds",
		"/spec/containers/0/lifecycle", "/spec/containers/0/env", "/spec/containers/0/volumeMounts", "/metadata/annotations", "/metadata/labels/albdrain.io~1managed"} {
		if paths[want] != "add" {
			t.Errorf("no add patch for %s; patches: %v", want, paths)
		}
	}
	for p, op := range paths {
		if op == "remove" || strings.Contains(p, "futureField") {
			t.Errorf("patch %s %s touches a field albdrain does not own", op, p)
		}
	}
	if got := testutil.ToFloat64(f.metrics.Mutations.WithLabelValues(string(eligibility.ResultInjected), string(eligibility.ReasonBehindALB))); got != 1 {
		t.Errorf("injected counter = %v, want 1", got)
	}
}

// TestHandlerReadinessGateOfUnreconciledBinding: behind a binding that no
// load balancer controller has reconciled (or not since its spec changed),
// the pod gets the hold but not the gate, and the skip is recorded on the
// pod and counted.
func TestHandlerReadinessGateOfUnreconciledBinding(t *testing.T) {
	tests := []struct {
		name     string
		status   lbc.TargetGroupBindingStatus
		wantGate bool
		want     []string
	}{
		{name: "reconciled", status: lbc.TargetGroupBindingStatus{ObservedGeneration: ptr.To[int64](1)}, wantGate: true},
		{name: "never reconciled", want: []string{"TargetGroupBinding tgb-web was never reconciled by a load balancer controller (no status.observedGeneration)"}},
		{name: "reconciled an older generation", status: lbc.TargetGroupBindingStatus{ObservedGeneration: ptr.To[int64](0)},
			want: []string{"TargetGroupBinding tgb-web: generation 1 not reconciled by a load balancer controller (status.observedGeneration 0)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newHandlerWithStatus(t, tc.status)
			raw := podRaw("")
			resp := f.handler.Handle(context.Background(), webhooktest.Request("shop", raw))
			if !resp.Allowed {
				t.Fatalf("denied: %v", resp.Result)
			}
			var pod corev1.Pod
			if err := json.Unmarshal([]byte(applyPatches(t, raw, resp)), &pod); err != nil {
				t.Fatal(err)
			}
			if got := len(pod.Spec.ReadinessGates) == 1; got != tc.wantGate {
				t.Errorf("readiness gates %v, want a gate: %v", pod.Spec.ReadinessGates, tc.wantGate)
			}
			if pod.Labels[contract.ManagedLabel] != "true" || len(pod.Spec.InitContainers) != 1 {
				t.Errorf("hold not injected: labels %v, init containers %v", pod.Labels, pod.Spec.InitContainers)
			}
			var rec contract.Record
			if err := json.Unmarshal([]byte(pod.Annotations[contract.InjectedKey]), &rec); err != nil {
				t.Fatalf("injected record: %v", err)
			}
			if d := cmp.Diff(tc.want, rec.ReadinessGatesSkipped); d != "" {
				t.Errorf("readinessGatesSkipped (-want +got):\n%s", d)
			}
			if got := testutil.ToFloat64(f.metrics.GatesSkipped); got != float64(len(tc.want)) {
				t.Errorf("skipped gates counter = %v, want %d", got, len(tc.want))
			}
		})
	}
}

func TestHandlerDecisions(t *testing.T) {
	tests := []struct {
		name        string
		ns, raw     string
		wantAllowed bool
		wantCode    int32
		wantPatches bool
		wantMsg     string
		result      eligibility.Result
		reason      eligibility.Reason
	}{
		{name: "opted out", ns: "shop", raw: podRaw(`{"albdrain.io/inject":"disabled"}`), wantAllowed: true, result: eligibility.ResultSkipped, reason: eligibility.ReasonOptedOut},
		{name: "kube-system", ns: "kube-system", raw: podRaw(""), wantAllowed: true, result: eligibility.ResultSkipped, reason: eligibility.ReasonSystemNamespace},
		{name: "no backend in namespace", ns: "other", raw: podRaw(""), wantAllowed: true, result: eligibility.ResultSkipped, reason: eligibility.ReasonNoBackend},
		{name: "invalid max hold", ns: "shop", raw: podRaw(`{"albdrain.io/max-hold-seconds":"soon"}`), wantCode: http.StatusForbidden,
			wantMsg: "albdrain.io/max-hold-seconds", result: eligibility.ResultDenied, reason: eligibility.ReasonInvalidOverride},
		{name: "invalid mode", ns: "shop", raw: podRaw(`{"albdrain.io/mode":"forever"}`), wantCode: http.StatusForbidden,
			wantMsg: "albdrain.io/mode", result: eligibility.ResultDenied, reason: eligibility.ReasonInvalidOverride},
		{name: "malformed object", ns: "shop", raw: `{"spec":`, wantCode: http.StatusBadRequest},
		{name: "wrong type in a known field", ns: "shop", raw: `{"apiVersion":"v1","kind":"Pod","spec":{"containers":"nope"}}`, wantCode: http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newHandler(t)
			resp := f.handler.Handle(context.Background(), webhooktest.Request(tc.ns, tc.raw))
			if resp.Allowed != tc.wantAllowed {
				t.Fatalf("allowed = %v, want %v (%v)", resp.Allowed, tc.wantAllowed, resp.Result)
			}
			if got := len(resp.Patches) > 0; got != tc.wantPatches {
				t.Errorf("patches = %v", resp.Patches)
			}
			if !tc.wantAllowed {
				if resp.Result == nil || resp.Result.Code != tc.wantCode || !strings.Contains(resp.Result.Message, tc.wantMsg) {
					t.Errorf("result = %+v, want code %d mentioning %q", resp.Result, tc.wantCode, tc.wantMsg)
				}
			}
			if tc.result != "" {
				if got := testutil.ToFloat64(f.metrics.Mutations.WithLabelValues(string(tc.result), string(tc.reason))); got != 1 {
					t.Errorf("counter %s/%s = %v, want 1", tc.result, tc.reason, got)
				}
			}
		})
	}
}

// TestHandlerSecondPassIsANoop feeds the mutated pod back, as the apiserver
// does under reinvocationPolicy IfNeeded.
func TestHandlerSecondPassIsANoop(t *testing.T) {
	f := newHandler(t)
	first := f.handler.Handle(context.Background(), webhooktest.Request("shop", podRaw("")))
	patched := applyPatches(t, podRaw(""), first)
	second := f.handler.Handle(context.Background(), webhooktest.Request("shop", patched))
	if !second.Allowed || len(second.Patches) != 0 {
		t.Errorf("second pass: allowed=%v patches=%v", second.Allowed, second.Patches)
	}
	var after corev1.Pod
	if err := json.Unmarshal([]byte(patched), &after); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{contract.InitContainerName}, names(after.Spec.InitContainers)); d != "" {
		t.Errorf("init containers: %s", d)
	}
}

func applyPatches(t *testing.T, raw string, resp admission.Response) string {
	t.Helper()
	ops, err := json.Marshal(resp.Patches)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// TestHandlerKeepsUnknownFieldsOfInitContainers guards the diff the
// framework computes: adding albdrain's init container must not move a field
// this k8s.io/api version does not know from the pod's own init container.
func TestHandlerKeepsUnknownFieldsOfInitContainers(t *testing.T) {
	f := newHandler(t)
	sidecar := strings.Replace(webhooktest.App("proxy", `,"restartPolicy":"Always"`), `"containerPort":8080`, `"containerPort":9000`, 1)
	raw := webhooktest.Pod(`"labels":{"app":"web"}`, `"initContainers":[`+sidecar+`],"containers":[`+webhooktest.App("app", "")+`]`)
	resp := f.handler.Handle(context.Background(), webhooktest.Request("shop", raw))
	if !resp.Allowed || len(resp.Patches) == 0 {
		t.Fatalf("allowed=%v patches=%v", resp.Allowed, resp.Patches)
	}
	var out struct {
		Spec struct {
			FutureField    json.RawMessage  `json:"futureField"`
			InitContainers []map[string]any `json:"initContainers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(applyPatches(t, raw, resp)), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Spec.FutureField) == 0 {
		t.Error("the pod's unknown spec field was dropped")
	}
	for _, c := range out.Spec.InitContainers {
		_, has := c["futureContainerField"]
		if want := c["name"] == "proxy"; has != want {
			t.Errorf("init container %v: has the unknown field = %v, want %v", c["name"], has, want)
		}
	}
	if n := len(out.Spec.InitContainers); n != 2 {
		t.Errorf("%d init containers, want the sidecar and albdrain's", n)
	}
}
