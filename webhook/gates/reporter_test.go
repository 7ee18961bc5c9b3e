package gates

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestReporter(t *testing.T) {
	ctx := context.Background()
	stuck := gatedPod([]string{"web"}, []string{"web"})
	fresh := gatedPod([]string{"web"}, []string{"web"})
	fresh.Name, fresh.UID = "web-2", "uid-2"
	fresh.Status.Conditions[0].LastTransitionTime = metav1.Now()
	cl := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(stuck, fresh).WithStatusSubresource(&corev1.Pod{}).Build()
	rec := events.NewFakeRecorder(10)
	r := &Reporter{Pods: cl, Recorder: rec, Metrics: NewMetrics(), After: 5 * time.Minute}
	reconcile := func(p *corev1.Pod) ctrl.Result {
		t.Helper()
		res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	gauge := func(want float64) {
		t.Helper()
		if got := testutil.ToFloat64(r.Metrics.Unset); got != want {
			t.Errorf("gauge = %v, want %v", got, want)
		}
	}

	// Within the bound: not reported, called again when it would be reached.
	if res := reconcile(fresh); res.RequeueAfter <= 0 || res.RequeueAfter > r.After {
		t.Errorf("fresh pod: requeue after %v, want within (0, %v]", res.RequeueAfter, r.After)
	}
	gauge(0)

	// Past the bound: one Warning event and counted, however often it is seen.
	for range 3 {
		if res := reconcile(stuck); res.RequeueAfter != 0 {
			t.Errorf("reported pod requeued after %v; its own changes call again", res.RequeueAfter)
		}
	}
	gauge(1)
	if got := drain(rec); len(got) != 1 || !strings.HasPrefix(got[0], "Warning "+ReasonGateUnset) ||
		!strings.Contains(got[0], "target-health.elbv2.k8s.aws/web (no condition") {
		t.Errorf("events %q, want one %s naming the unset gate", got, ReasonGateUnset)
	}

	// The controller sets the gate: no longer counted.
	stuck.Status.Conditions = append(stuck.Status.Conditions, gateCond("web", corev1.ConditionTrue, "healthy", time.Now()))
	if err := cl.Status().Update(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	reconcile(stuck)
	gauge(0)

	// Recreated under the same name and stuck again: warned about anew;
	// deleted: no longer counted.
	if err := cl.Delete(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	again := gatedPod([]string{"web"}, []string{"web"})
	again.UID = "uid-3"
	if err := cl.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	reconcile(again)
	gauge(1)
	if got := drain(rec); len(got) != 1 {
		t.Errorf("events %q for the recreated pod, want one", got)
	}
	if err := cl.Delete(ctx, again); err != nil {
		t.Fatal(err)
	}
	reconcile(again)
	gauge(0)
}

func drain(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		after time.Duration
		ok    bool
	}{{0, true}, {5 * time.Minute, true}, {-time.Second, false}} {
		c := Config{ReportAfter: tc.after}
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("ReportAfter %v: err %v, want ok %v", tc.after, err, tc.ok)
		}
	}
}
