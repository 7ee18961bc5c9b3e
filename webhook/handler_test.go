package webhook

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gomodulesjsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/lbc/lbctest"
	"github.com/albdrain/albdrain/webhook/inject"
	"github.com/albdrain/albdrain/webhook/webhooktest"
)

// servedBy is namespace shop with Service <app> on port 8080, registered by
// a reconciled TargetGroupBinding.
func servedBy(app string) []client.Object {
	return []client.Object{
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: "shop"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
		&lbc.TargetGroupBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "tgb-" + app, Namespace: "shop", Generation: 1},
			Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: "arn:tg", TargetType: ptr.To(lbc.TargetTypeIP),
				ServiceRef: lbc.ServiceReference{Name: app, Port: intstr.FromInt32(80)}},
			Status: lbc.TargetGroupBindingStatus{ObservedGeneration: ptr.To[int64](1)},
		},
	}
}

// handlers are the framework's defaulter webhook and the PatchHandler over
// one PodDefaulter, as the manager would serve either.
func handlers(tb testing.TB, d admission.Defaulter[*corev1.Pod]) (diff, patch admission.Handler) {
	tb.Helper()
	s := lbctest.Scheme(tb)
	return admission.WithDefaulter(s, d), &admission.Webhook{Handler: NewPatchHandler(s, d)}
}

func podDefaulter(tb testing.TB, objs ...client.Object) *PodDefaulter {
	tb.Helper()
	return &PodDefaulter{
		Finder: lbctest.NewFinder(tb, objs...),
		Options: inject.Options{Mode: contract.ModeWait, MaxHold: 330 * time.Second, Sleep: 30 * time.Second, Fallback: 30 * time.Second,
			QuietPeriod: 3 * time.Second, ShutdownBudget: 30 * time.Second, HelperImage: "albdrain:test", HelperImagePath: "/albdrain-hold",
			WatcherURL: "https://albdrain.albdrain.svc:8443", CABundle: true},
		Metrics: NewMetrics(),
	}
}

// TestPatchHandlerAgreesWithDefaulter feeds the same reviews to the
// framework's whole-pod diff and to the PatchHandler: both must answer
// alike, and their patches must turn the pod's JSON, fields this k8s.io/api
// version does not know included, into the same document.
func TestPatchHandlerAgreesWithDefaulter(t *testing.T) {
	diff, patch := handlers(t, podDefaulter(t, servedBy("web")...))
	ctx := context.Background()
	app := webhooktest.App("app", "")
	plain := webhooktest.Pod(`"labels":{"app":"web"}`, `"containers":[`+app+`]`)
	own := webhooktest.Pod(`"labels":{"app":"web"},"annotations":{"team/owner":"shop","albdrain.io/mode":"wait"}`,
		`"volumes":[{"name":"data","emptyDir":{},"futureVolumeField":1}],"readinessGates":[{"conditionType":"x"}],"containers":[`+
			webhooktest.App("app", `,"env":[{"name":"LOG_LEVEL","value":"info"}],"volumeMounts":[{"name":"data","mountPath":"/data","futureMountField":1}],`+
				`"lifecycle":{"preStop":{"httpGet":{"port":"http"}},"futureLifecycleField":true}`)+`]`)
	firstPass := func(raw string) string {
		return applyPatches(t, raw, diff.Handle(ctx, webhooktest.Request("shop", raw)))
	}
	// What Istio's injector adds after albdrain's first pass.
	meshed := func(raw string) string {
		return applyPatches(t, firstPass(raw), admission.Response{Patches: []gomodulesjsonpatch.Operation{
			{Operation: "add", Path: "/metadata/annotations/sidecar.istio.io~1status", Value: "{}"},
			{Operation: "add", Path: "/spec/containers/-", Value: map[string]any{
				"name": "istio-proxy", "image": "proxyv2:1", "resources": map[string]any{}, "futureContainerField": "keep"}},
		}})
	}
	sidecar := webhooktest.App("proxy", `,"restartPolicy":"Always","lifecycle":{"preStop":{"exec":{"command":["/drain"]}}}`)
	tests := []struct {
		name, ns, raw string
		op            admissionv1.Operation
	}{
		{name: "plain pod", ns: "shop", raw: plain},
		{name: "deployment pod", ns: "shop", raw: webhooktest.DeploymentPod("web")},
		{name: "own hook, environment, mounts, volumes and annotations", ns: "shop", raw: own},
		{name: "held native sidecar", ns: "shop", raw: webhooktest.Pod(`"labels":{"app":"web"}`,
			`"initContainers":[`+sidecar+`],"containers":[`+app+`]`)},
		{name: "sleep mode with empty lists", ns: "shop", raw: webhooktest.Pod(`"labels":{"app":"web"},"annotations":{"albdrain.io/mode":"sleep"}`,
			`"volumes":[],"readinessGates":[],"containers":[`+webhooktest.App("app", `,"env":[],"lifecycle":{}`)+`]`)},
		{name: "second pass", ns: "shop", raw: firstPass(own)},
		{name: "mesh injected after albdrain: hold removed", ns: "shop", raw: meshed(plain)},
		{name: "mesh injected after albdrain: the pod's own entries stay", ns: "shop", raw: meshed(own)},
		{name: "windows: skip recorded", ns: "shop", raw: webhooktest.Pod(`"labels":{"app":"web"}`, `"os":{"name":"windows"},"containers":[`+app+`]`)},
		{name: "opted out", ns: "shop", raw: webhooktest.Pod(`"labels":{"app":"web"},"annotations":{"albdrain.io/inject":"disabled"}`, `"containers":[`+app+`]`)},
		{name: "no backend", ns: "other", raw: plain},
		{name: "kube-system", ns: "kube-system", raw: plain},
		{name: "invalid override denied", ns: "shop", raw: webhooktest.Pod(`"labels":{"app":"web"},"annotations":{"albdrain.io/mode":"forever"}`, `"containers":[`+app+`]`)},
		{name: "malformed", ns: "shop", raw: `{"spec":`},
		{name: "delete", ns: "shop", raw: plain, op: admissionv1.Delete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := webhooktest.Request(tc.ns, tc.raw)
			if tc.op != "" {
				req.Operation = tc.op
			}
			want, got := diff.Handle(ctx, req), patch.Handle(ctx, req)
			if d := cmp.Diff(want.AdmissionResponse, got.AdmissionResponse, cmp.FilterPath(func(p cmp.Path) bool {
				return p.Last().String() == ".Patch"
			}, cmp.Ignore())); d != "" {
				t.Fatalf("response (-defaulter +patch handler):\n%s", d)
			}
			if !want.Allowed {
				return
			}
			if d := cmp.Diff(jsonValue(t, applyPatches(t, tc.raw, want)), jsonValue(t, applyPatches(t, tc.raw, got))); d != "" {
				t.Errorf("patched pod (-defaulter +patch handler):\n%s\npatch handler's patch: %s", d, got.Patch)
			}
		})
	}
}

// TestPatchHandlerFallsBackToTheDiff: a defaulter that changes a field
// inject.Patch does not cover still gets its whole change through.
func TestPatchHandlerFallsBackToTheDiff(t *testing.T) {
	diff, patch := handlers(t, hostnamer{})
	raw := webhooktest.DeploymentPod("web")
	req := webhooktest.Request("shop", raw)
	want, got := diff.Handle(context.Background(), req), patch.Handle(context.Background(), req)
	if !got.Allowed || len(got.Patches) == 0 {
		t.Fatalf("allowed=%v patches=%v", got.Allowed, got.Patches)
	}
	if d := cmp.Diff(jsonValue(t, applyPatches(t, raw, want)), jsonValue(t, applyPatches(t, raw, got))); d != "" {
		t.Errorf("patched pod (-defaulter +patch handler):\n%s", d)
	}
}

type hostnamer struct{}

func (hostnamer) Default(_ context.Context, pod *corev1.Pod) error {
	pod.Spec.Hostname = "web-0"
	setAnnotation(pod, "albdrain.io/test", "x")
	return nil
}

func jsonValue(t *testing.T, doc string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// BenchmarkReview is one review of the admission benchmark's pod by either
// handler: the framework's whole-pod diff ("diff") and the PatchHandler
// ("patch"), over the same lookup of the pod's own Service and binding.
func BenchmarkReview(b *testing.B) {
	diff, patch := handlers(b, podDefaulter(b, servedBy("web")...))
	req := webhooktest.Request("shop", webhooktest.DeploymentPod("web"))
	for _, bc := range []struct {
		name string
		h    admission.Handler
	}{{"diff", diff}, {"patch", patch}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := bc.h.Handle(context.Background(), req); len(r.Patches) == 0 {
					b.Fatalf("no patch: %+v", r.Result)
				}
			}
		})
	}
}
