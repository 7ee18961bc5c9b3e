package webhook

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/eligibility"
	"github.com/albdrain/albdrain/webhook/webhooktest"
)

// TestHandlerSkipsUnsupportedPods: a Windows or hostNetwork pod behind an
// ip target group is admitted unmutated, with the reason recorded.
func TestHandlerSkipsUnsupportedPods(t *testing.T) {
	app := `"containers":[` + webhooktest.App("app", "") + `]`
	tests := []struct {
		name, spec, why string
		reason          eligibility.Reason
	}{
		{name: "windows", spec: `"os":{"name":"windows"},` + app, reason: eligibility.ReasonWindows, why: "Windows pod: albdrain's helper runs on Linux only"},
		{name: "windows selector", spec: `"nodeSelector":{"kubernetes.io/os":"windows"},` + app, reason: eligibility.ReasonWindows, why: "Windows pod: albdrain's helper runs on Linux only"},
		{name: "hostNetwork", spec: `"hostNetwork":true,` + app, reason: eligibility.ReasonHostNetwork, why: "hostNetwork pod: its address and sockets are the node's"},
		{name: "istio-proxy container", spec: `"containers":[` + webhooktest.App("app", "") + `,{"name":"istio-proxy","image":"proxyv2:1"}]`,
			reason: eligibility.ReasonServiceMesh, why: istioWhy},
		{name: "istio-proxy native sidecar", spec: `"initContainers":[{"name":"istio-proxy","image":"proxyv2:1","restartPolicy":"Always"}],` + app,
			reason: eligibility.ReasonServiceMesh, why: istioWhy},
		{name: "linkerd-init", spec: `"initContainers":[{"name":"linkerd-init","image":"proxy-init:1"}],` + app,
			reason: eligibility.ReasonServiceMesh, why: "Linkerd" + meshWhy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newHandler(t)
			raw := webhooktest.Pod(`"labels":{"app":"web"}`, tc.spec)
			resp := f.handler.Handle(context.Background(), webhooktest.Request("shop", raw))
			if !resp.Allowed {
				t.Fatalf("denied: %v", resp.Result)
			}
			var out, in corev1.Pod
			if err := json.Unmarshal([]byte(applyPatches(t, raw, resp)), &out); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(raw), &in); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{contract.SkippedKey: tc.why}
			if d := cmp.Diff(want, out.Annotations); d != "" {
				t.Errorf("annotations (-want +got):\n%s", d)
			}
			if d := cmp.Diff(in.Spec, out.Spec); d != "" {
				t.Errorf("pod was mutated (-in +out):\n%s", d)
			}
			if got := testutil.ToFloat64(f.metrics.Mutations.WithLabelValues(string(eligibility.ResultSkipped), string(tc.reason))); got != 1 {
				t.Errorf("counter skipped/%s = %v, want 1", tc.reason, got)
			}
		})
	}
}

const (
	meshWhy  = " sidecar proxy: albdrain cannot hold a meshed pod yet (the proxy takes the load balancer's traffic and is not held)"
	istioWhy = "Istio" + meshWhy
)

// TestHandlerMeshInjectedAfterAlbdrain: a mesh injector that runs after
// albdrain adds its proxy to a pod albdrain already held; albdrain's
// reinvocation takes its hold out again and records why, rather than
// claiming protection the pod does not have.
func TestHandlerMeshInjectedAfterAlbdrain(t *testing.T) {
	f := newHandler(t)
	raw := webhooktest.Pod(`"labels":{"app":"web"}`, `"containers":[`+webhooktest.App("app", "")+`]`)
	first := f.handler.Handle(context.Background(), webhooktest.Request("shop", raw))
	injected := applyPatches(t, raw, first)
	var pod corev1.Pod
	if err := json.Unmarshal([]byte(injected), &pod); err != nil {
		t.Fatal(err)
	}
	if pod.Labels[contract.ManagedLabel] != "true" {
		t.Fatalf("first pass did not inject: %v", pod.Labels)
	}
	// What Istio's injector adds.
	pod.Annotations["sidecar.istio.io/status"] = `{"containers":["istio-proxy"]}`
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "istio-proxy", Image: "proxyv2:1"})
	meshed, err := json.Marshal(&pod)
	if err != nil {
		t.Fatal(err)
	}
	second := f.handler.Handle(context.Background(), webhooktest.Request("shop", string(meshed)))
	if !second.Allowed {
		t.Fatalf("denied: %v", second.Result)
	}
	var out corev1.Pod
	if err := json.Unmarshal([]byte(applyPatches(t, string(meshed), second)), &out); err != nil {
		t.Fatal(err)
	}
	wantAnn := map[string]string{"sidecar.istio.io/status": `{"containers":["istio-proxy"]}`, contract.SkippedKey: istioWhy}
	if d := cmp.Diff(wantAnn, out.Annotations); d != "" {
		t.Errorf("annotations (-want +got):\n%s", d)
	}
	if out.Labels[contract.ManagedLabel] != "" {
		t.Errorf("still labelled managed: %v", out.Labels)
	}
	if len(out.Spec.InitContainers) != 0 || out.Spec.Containers[0].Lifecycle != nil || len(out.Spec.Containers[0].Env) != 0 {
		t.Errorf("hold left in the pod: %+v", out.Spec)
	}
	if got := testutil.ToFloat64(f.metrics.Mutations.WithLabelValues(string(eligibility.ResultSkipped), string(eligibility.ReasonServiceMesh))); got != 1 {
		t.Errorf("counter skipped/%s = %v, want 1", eligibility.ReasonServiceMesh, got)
	}
}
