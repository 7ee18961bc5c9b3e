package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/webhook/gates"
)

// TestReadinessGatesNobodySets runs the webhook and the reporter against a
// real apiserver, with the kubelet stand-in running the pods and no load
// balancer controller at all: a binding it never reconciled gives the pod
// no gate, so the pod becomes Ready; a binding marked reconciled gives it
// the gate, which then stays unset, and the reporter warns about the pod
// once and counts it until the gate is set.
func TestReadinessGatesNobodySets(t *testing.T) {
	wh, err := cluster.WebhookConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	env := kubetest.Start(t, kubetest.WithMutatingWebhooks(wh), kubetest.WithTargetGroupBindingCRD())
	cl := env.Client
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "gates"
	mustCreate(t, cl, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{contract.InjectKey: "enabled"}}})
	bindings := map[string]*lbc.TargetGroupBinding{}
	for _, app := range []string{"orphan", "served"} {
		mustCreate(t, cl, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
		})
		bindings[app] = &lbc.TargetGroupBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "k8s-" + app, Namespace: ns},
			Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/" + app + "/1",
				TargetType: ptr.To(lbc.TargetTypeIP), ServiceRef: lbc.ServiceReference{Name: app, Port: intstr.FromInt32(80)}},
		}
		mustCreate(t, cl, bindings[app])
	}
	mustMarkReconciled(t, cl, bindings["served"])
	k, err := kubelet.Start(ctx, env.Config, kubelet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)
	gauge := app.InProcess().Metrics.Gates.Unset // the manager's
	before := testutil.ToFloat64(gauge)
	startManager(t, env, "--readiness-gate-report-after=1s")

	pod := func(app string) *corev1.Pod {
		p := restrictedPod(ns, app+"-1")
		p.Labels["app"] = app
		// The gate of the binding reconciled may be taken from the cache
		// before the status reached it: the webhook answers from its cache.
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			dry := p.DeepCopy()
			if err := cl.Create(ctx, dry, client.DryRunAll); err != nil {
				return false, err
			}
			return app != "served" || len(dry.Spec.ReadinessGates) > 0, nil
		})
		if err != nil {
			t.Fatalf("pod %s never got its gate: %v", app, err)
		}
		mustCreate(t, cl, p)
		if !isMutated(p) {
			t.Fatalf("pod %s not mutated: %v", app, p.Annotations)
		}
		return p
	}

	// (a) The binding no controller reconciled: the hold without the gate,
	// the reason recorded, and the pod becomes Ready.
	orphan := pod("orphan")
	if len(orphan.Spec.ReadinessGates) != 0 {
		t.Errorf("readiness gates %v behind a binding no controller reconciled", orphan.Spec.ReadinessGates)
	}
	want := []string{"TargetGroupBinding k8s-orphan was never reconciled by a load balancer controller (no status.observedGeneration)"}
	if d := cmp.Diff(want, contract.ParseRecord(orphan.Annotations).ReadinessGatesSkipped); d != "" {
		t.Errorf("readinessGatesSkipped (-want +got):\n%s", d)
	}
	waitPodCondition(t, cl, orphan, corev1.PodReady, corev1.ConditionTrue)

	// (b) The binding reconciled: the gate is added, and with no controller
	// to set it the pod stays NotReady with its containers ready.
	served := pod("served")
	gate := corev1.PodConditionType(lbc.ReadinessGatePrefix + "k8s-served")
	if d := cmp.Diff([]corev1.PodReadinessGate{{ConditionType: gate}}, served.Spec.ReadinessGates); d != "" {
		t.Errorf("readiness gates (-want +got):\n%s", d)
	}
	waitPodCondition(t, cl, served, corev1.ContainersReady, corev1.ConditionTrue)

	// (c) Reported: one Warning event naming the gate, and counted.
	events := func() []eventsv1.Event {
		var list eventsv1.EventList
		if err := cl.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		var out []eventsv1.Event
		for _, e := range list.Items {
			if e.ReportingController == gates.EventSource {
				out = append(out, e)
			}
		}
		return out
	}
	waitFor(t, "the ReadinessGateUnset event", func() bool { return len(events()) > 0 })
	got := events()
	if len(got) != 1 || got[0].Regarding.UID != served.UID || got[0].Type != corev1.EventTypeWarning ||
		got[0].Reason != gates.ReasonGateUnset || !strings.Contains(got[0].Note, string(gate)) {
		t.Errorf("events %+v, want one Warning %s on %s naming %s", got, gates.ReasonGateUnset, served.Name, gate)
	}
	if g := testutil.ToFloat64(gauge); g != before+1 {
		t.Errorf("gauge %v, want %v", g, before+1)
	}
	if c := podCondition(t, cl, served, corev1.PodReady); c != corev1.ConditionFalse {
		t.Errorf("pod Ready %q with its gate unset", c)
	}

	// A controller sets the gate at last: Ready, and no longer counted.
	// A strategic merge keyed by type leaves the kubelet's conditions alone.
	body, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.PodCondition{
		{Type: gate, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Status().Patch(ctx, served, client.RawPatch(types.StrategicMergePatchType, body)); err != nil {
		t.Fatal(err)
	}
	waitPodCondition(t, cl, served, corev1.PodReady, corev1.ConditionTrue)
	waitFor(t, "the gauge to drop the pod", func() bool { return testutil.ToFloat64(gauge) == before })
	if n := len(events()); n != 1 {
		t.Errorf("%d events from the reporter, want the one", n)
	}
}

// podCondition is the status of the pod's condition of type ct, "" if none.
func podCondition(t *testing.T, cl client.Client, pod *corev1.Pod, ct corev1.PodConditionType) corev1.ConditionStatus {
	t.Helper()
	var p corev1.Pod
	if err := cl.Get(context.Background(), client.ObjectKeyFromObject(pod), &p); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == ct {
			return c.Status
		}
	}
	return ""
}

func waitPodCondition(t *testing.T, cl client.Client, pod *corev1.Pod, ct corev1.PodConditionType, want corev1.ConditionStatus) {
	t.Helper()
	waitFor(t, fmt.Sprintf("pod %s %s %s", pod.Name, ct, want), func() bool { return podCondition(t, cl, pod, ct) == want })
}
