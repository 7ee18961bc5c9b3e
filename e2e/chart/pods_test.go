package chart

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/eligibility"
	"github.com/albdrain/albdrain/internal/lbc"
)

// albNamespace is a namespace holding a Service that is the backend of an
// ALB ip target group: the webhook mutates its pods whenever it sees them.
type albNamespace struct {
	c  client.Client
	ns string
}

// optIn is the chart's default namespace label.
var optIn = map[string]string{contract.InjectKey: "enabled"}

func newALBNamespace(t *testing.T, c client.Client, ns string, labels map[string]string) *albNamespace {
	t.Helper()
	ctx := context.Background()
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
		},
		&lbc.TargetGroupBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "k8s-web-1234", Namespace: ns},
			Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1",
				TargetType: ptr.To(lbc.TargetTypeIP), ServiceRef: lbc.ServiceReference{Name: "web", Port: intstr.FromInt32(80)}},
		},
	} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("create %T: %v", obj, err)
		}
	}
	return &albNamespace{c: c, ns: ns}
}

func webPod(ns string, labels map[string]string) *corev1.Pod {
	l := map[string]string{"app": "web"}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: ns, Labels: l},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
}

// admit runs pod through admission without storing it.
func (o *albNamespace) admit(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	if err := o.c.Create(context.Background(), pod, client.DryRunAll); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	return pod
}

func mutated(p *corev1.Pod) bool { return p.Labels[contract.ManagedLabel] == "true" }

func env(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// mutatedWithCA admits a pod behind the ALB: only a webhook the apiserver
// reached over TLS, trusting the CA albdrain injected, could have mutated
// it. The pod is told to trust, for the hold endpoint at the chart's URL,
// the CA bundle albdrain publishes in its namespace, which holds that CA
// once a managed pod lives there.
func (o *albNamespace) mutatedWithCA(t *testing.T, ca []byte, helperImage string) {
	pod := o.eventuallyMutated(t)
	app := pod.Spec.Containers[0]
	if got := env(app, contract.EnvWatcherCA); got != "" {
		t.Errorf("%s = %q: a copy of the CA goes stale when it changes", contract.EnvWatcherCA, got)
	}
	if got := env(app, contract.EnvTrustDir); got != contract.TrustMountPath {
		t.Errorf("%s = %q, want %q", contract.EnvTrustDir, got, contract.TrustMountPath)
	}
	if !projectsBundle(pod) {
		t.Errorf("volumes %+v: want the ConfigMap %s projected", pod.Spec.Volumes, contract.CABundleConfigMap)
	}
	stored := webPod(o.ns, nil)
	if err := o.c.Create(context.Background(), stored); err != nil {
		t.Fatal(err)
	}
	o.bundleHolds(t, ca)
	if got, want := env(app, contract.EnvWatcherURL), "https://"+releaseName+"."+releaseNamespace+".svc:8443"; got != want {
		t.Errorf("%s = %q, want %q", contract.EnvWatcherURL, got, want)
	}
	if init := pod.Spec.InitContainers; len(init) != 1 || init[0].Image != helperImage {
		t.Errorf("init containers %v, want the helper from the chart's image", init)
	}
}

// projectsBundle reports whether pod's trust volume projects the CA bundle.
func projectsBundle(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Name != contract.TrustVolumeName || v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ConfigMap != nil && s.ConfigMap.Name == contract.CABundleConfigMap {
				return true
			}
		}
	}
	return false
}

// bundleHolds waits until the namespace's published CA bundle holds every
// one of cas.
func (o *albNamespace) bundleHolds(t *testing.T, cas ...[]byte) {
	t.Helper()
	var bundle string
	eventually(t, "the CA bundle published in "+o.ns, func() (bool, error) {
		var cm corev1.ConfigMap
		if err := o.c.Get(context.Background(), client.ObjectKey{Namespace: o.ns, Name: contract.CABundleConfigMap}, &cm); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		bundle = cm.Data[contract.CABundleFile]
		for _, ca := range cas {
			if !strings.Contains(bundle, strings.TrimSpace(string(ca))) {
				return false, nil
			}
		}
		return true, nil
	}, func() string { return "bundle: " + bundle })
}

// eventuallyMutated admits pods until one is mutated and returns it: the
// apiserver picks up a new CA bundle shortly after it is written, and the
// server a new certificate shortly after the kubelet projects it; until
// then the webhook fails open and pods pass unmutated.
func (o *albNamespace) eventuallyMutated(t *testing.T) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	eventually(t, "a pod to be mutated", func() (bool, error) {
		last = o.admit(t, webPod(o.ns, nil))
		return mutated(last), nil
	}, func() string { return "last pod's labels: " + labelsOf(last) })
	return last
}

func labelsOf(p *corev1.Pod) string {
	if p == nil {
		return "none"
	}
	return metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: p.Labels})
}

// selectorsHold checks the registration, not the webhook's own guards: each
// pod below would be mutated, or counted, had the apiserver sent it.
func (o *albNamespace) selectorsHold(t *testing.T) {
	ctx := context.Background()
	if own := o.admit(t, webPod(o.ns, map[string]string{"app.kubernetes.io/name": releaseName})); mutated(own) {
		t.Error("albdrain's own pod was sent to the webhook")
	}
	plain := newALBNamespace(t, o.c, "plain", nil)
	if p := plain.admit(t, webPod(plain.ns, nil)); mutated(p) {
		t.Error("pod in a namespace without the opt-in label was mutated")
	}
	// The webhook itself skips kube-system and counts it; the chart's
	// namespaceSelector must keep such pods from reaching it at all.
	var ns corev1.Namespace
	if err := o.c.Get(ctx, client.ObjectKey{Name: "kube-system"}, &ns); err != nil {
		t.Fatal(err)
	}
	ns.Labels[contract.InjectKey] = "enabled"
	if err := o.c.Update(ctx, &ns); err != nil {
		t.Fatal(err)
	}
	skipped := app.InProcess().Metrics.Webhook.Mutations.WithLabelValues(string(eligibility.ResultSkipped), string(eligibility.ReasonSystemNamespace))
	before := testutil.ToFloat64(skipped)
	o.admit(t, webPod("kube-system", nil))
	if after := testutil.ToFloat64(skipped); after != before {
		t.Error("a kube-system pod reached the webhook")
	}
}
