package integration

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// TestGatesOfBindingsTheControllerRefuses runs albdrain's webhook beside the
// load balancer controller's stand-in on bindings whose reconcile never
// finishes: one because the controller's role lacks
// ec2:DescribeSecurityGroups (defaultNetworkingManager.fetchEndpointSGs
// fails, reconcileWithIPTargetType requeues without writing
// status.observedGeneration), one because it has no targetType
// (defaultResourceManager.Reconcile refuses it; the controller's webhook
// would have defaulted it). albdrain must give the first's pods the hold
// without the readiness gate and say why, leave the second's alone and say
// why; once EC2 answers, the first binding is reconciled and its pods get
// the gate.
func TestGatesOfBindingsTheControllerRefuses(t *testing.T) {
	wh, err := cluster.WebhookConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	env := kubetest.Start(t, kubetest.WithMutatingWebhooks(wh), kubetest.WithTargetGroupBindingCRD())
	cl := env.Client
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	emu := albemu.NewForTest(t, albemu.Options{})
	emu.SetActionFaults("DescribeSecurityGroups", albemu.Faults{Denied: true})
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "web", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	elb, ec2 := fakelbc.Clients(emu.URL())
	ctl, err := fakelbc.Start(ctx, env.Config, fakelbc.Options{ELBv2: elb, EC2: ec2, Requeue: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)

	const ns = "refused"
	mustCreate(t, cl, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{contract.InjectKey: "enabled"}}})
	for _, app := range []string{"denied", "untyped"} {
		mustCreate(t, cl, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
		})
		tgb := &lbc.TargetGroupBinding{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns},
			Spec:       lbc.TargetGroupBindingSpec{TargetGroupARN: arn, ServiceRef: lbc.ServiceReference{Name: app, Port: intstr.FromInt32(80)}},
		}
		if app == "denied" {
			tgb.Spec.TargetType = ptr.To(lbc.TargetTypeIP)
		}
		mustCreate(t, cl, tgb)
	}
	// The controller has tried EC2 and been refused, and has seen both
	// bindings (its finalizer is on them).
	waitFor(t, "a refused DescribeSecurityGroups", func() bool {
		return slices.ContainsFunc(emu.Calls(), func(c albemu.Call) bool {
			return c.Action == "DescribeSecurityGroups" && c.ErrorCode == albemu.CodeUnauthorizedOperation
		})
	})
	for _, app := range []string{"denied", "untyped"} {
		waitFor(t, "the finalizer on "+app, func() bool {
			var tgb lbc.TargetGroupBinding
			return cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: app}, &tgb) == nil && slices.Contains(tgb.Finalizers, fakelbc.Finalizer)
		})
	}
	startManager(t, env)

	admit := func(app string) *corev1.Pod {
		t.Helper()
		p := restrictedPod(ns, app+"-1")
		p.Labels["app"] = app
		if err := cl.Create(ctx, p, client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := admit("denied")
	if !isMutated(p) || len(p.Spec.ReadinessGates) != 0 {
		t.Errorf("denied: mutated %v, readiness gates %v: want the hold without a gate", isMutated(p), p.Spec.ReadinessGates)
	}
	want := []string{"TargetGroupBinding denied was never reconciled by a load balancer controller (no status.observedGeneration)"}
	if d := cmp.Diff(want, contract.ParseRecord(p.Annotations).ReadinessGatesSkipped); d != "" {
		t.Errorf("denied: readinessGatesSkipped (-want +got):\n%s", d)
	}
	p = admit("untyped")
	if isMutated(p) || len(p.Spec.ReadinessGates) != 0 || p.Annotations[contract.SkippedKey] != "TargetGroupBinding untyped has no targetType" {
		t.Errorf("untyped: mutated %v, gates %v, annotations %v: want it left alone, saying why", isMutated(p), p.Spec.ReadinessGates, p.Annotations)
	}

	emu.ClearFaults()
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return len(admit("denied").Spec.ReadinessGates) == 1, nil
	})
	if err != nil {
		t.Fatalf("pod never got the gate once EC2 answered: %v", err)
	}
}
