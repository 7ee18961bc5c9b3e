package chart

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/drain/watcher/hold"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
)

// escalation is one write by the manager's ServiceAccount, and whether the
// chart's admission policies must refuse it.
type escalation struct {
	name   string
	write  func(ctx context.Context, c client.Client) error
	denied bool
}

// TestManagerCannotEscalate installs the chart (draining policy, self-managed
// certificates: every write the manager has) and writes as its
// ServiceAccount through the real apiserver: RBAC lets each of these
// through, the chart's ValidatingAdmissionPolicies refuse all but the
// manager's own writes.
func TestManagerCannotEscalate(t *testing.T) {
	env := kubetest.Start(t)
	ctx := context.Background()
	apply(t, env.Client, objects(t, mustRender(t, "watcher: {releasePolicy: draining}")), reservePort(t))
	rc := rest.CopyConfig(env.Config)
	rc.Impersonate = rest.ImpersonationConfig{UserName: serviceAccountUser}
	sa, err := client.New(rc, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	const shop = "shop"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shop}}); err != nil {
		t.Fatal(err)
	}
	managed := terminatingPod(t, env.Client, shop, "managed", map[string]string{contract.ManagedLabel: "true"}, true)
	running := terminatingPod(t, env.Client, shop, "running", map[string]string{contract.ManagedLabel: "true"}, false)
	other := terminatingPod(t, env.Client, shop, "other", nil, true)
	// The apiserver loads policies asynchronously: wait until each refuses.
	for _, probe := range []func(context.Context, client.Client) error{
		func(ctx context.Context, c client.Client) error {
			return c.Create(ctx, caBundle("kube-system", "aws-auth", nil), client.DryRunAll)
		},
		func(ctx context.Context, c client.Client) error {
			return patchPod(ctx, c, running, `{"metadata":{"labels":{"x":"y"}}}`)
		},
		func(ctx context.Context, c client.Client) error {
			return updateWebhook(ctx, c, func(w *admissionv1.MutatingWebhookConfiguration) { w.Labels["x"] = "y" })
		},
	} {
		eventually(t, "the admission policies to be in force", func() (bool, error) {
			return refusedByPolicy(probe(ctx, sa)), nil
		}, nil)
	}

	patch := func(pod *corev1.Pod, p string) func(context.Context, client.Client) error {
		return func(ctx context.Context, c client.Client) error { return patchPod(ctx, c, pod, p) }
	}
	webhookChange := func(mod func(*admissionv1.MutatingWebhookConfiguration)) func(context.Context, client.Client) error {
		return func(ctx context.Context, c client.Client) error { return updateWebhook(ctx, c, mod) }
	}
	create := func(cm *corev1.ConfigMap) func(context.Context, client.Client) error {
		return func(ctx context.Context, c client.Client) error { return c.Create(ctx, cm) }
	}
	updateBundle := func(mod func(*corev1.ConfigMap)) func(context.Context, client.Client) error {
		return func(ctx context.Context, c client.Client) error {
			var cm corev1.ConfigMap
			if err := c.Get(ctx, client.ObjectKey{Namespace: shop, Name: contract.CABundleConfigMap}, &cm); err != nil {
				return err
			}
			mod(&cm)
			return c.Update(ctx, &cm)
		}
	}
	awsAuth := caBundle("kube-system", "aws-auth", nil)
	awsAuth.Data = map[string]string{"mapRoles": "- rolearn: arn:aws:iam::111122223333:role/attacker\n  groups: [system:masters]\n"}
	tests := []escalation{
		// ConfigMaps: RBAC cannot narrow create by name.
		{name: "create kube-system/aws-auth", write: create(awsAuth), denied: true},
		{name: "create aws-auth elsewhere", write: create(caBundle(shop, "aws-auth", nil)), denied: true},
		{name: "create its bundle in kube-system", write: create(caBundle("kube-system", contract.CABundleConfigMap, nil)), denied: true},
		{name: "create its bundle with another key", write: create(caBundle(shop, contract.CABundleConfigMap, map[string]string{"mapRoles": "x"})), denied: true},
		{name: "create its bundle without its label", write: create(func() *corev1.ConfigMap {
			cm := caBundle(shop, contract.CABundleConfigMap, nil)
			cm.Labels = nil
			return cm
		}()), denied: true},
		{name: "publish its CA bundle", write: create(caBundle(shop, contract.CABundleConfigMap, nil))},
		{name: "renew its CA bundle", write: updateBundle(func(cm *corev1.ConfigMap) { cm.Data[contract.CABundleFile] += "\n" })},
		{name: "add a key to its bundle", write: updateBundle(func(cm *corev1.ConfigMap) { cm.Data["other"] = "x" }), denied: true},
		// Pods: only the draining mark of a terminating managed pod.
		{name: "change a running pod's image", write: patch(running, `{"spec":{"containers":[{"name":"app","image":"evil:1"}]}}`), denied: true},
		{name: "change a terminating pod's image", write: patch(managed, `{"spec":{"containers":[{"name":"app","image":"evil:1"}]}}`), denied: true},
		{name: "relabel a pod out of its Service", write: patch(managed, `{"metadata":{"labels":{"app":"gone"}}}`), denied: true},
		{name: "change another annotation", write: patch(managed, `{"metadata":{"annotations":{"other":"x"}}}`), denied: true},
		{name: "mark a pod it does not manage", write: patch(other, `{"metadata":{"annotations":{"`+contract.DrainingSinceKey+`":"{}"}}}`), denied: true},
		{name: "mark a terminating managed pod draining", write: func(ctx context.Context, c client.Client) error {
			return hold.PodMarker{Client: c}.MarkDraining(ctx, managed, map[string]time.Time{"arn:tg": time.Now().UTC().Truncate(time.Second)})
		}},
		// Its webhook configuration: only the CA bundle.
		{name: "inject a new CA", write: webhookChange(func(w *admissionv1.MutatingWebhookConfiguration) {
			w.Webhooks[0].ClientConfig.CABundle = []byte("-----BEGIN CERTIFICATE-----\n")
		})},
		{name: "widen its rules to Secrets", write: webhookChange(func(w *admissionv1.MutatingWebhookConfiguration) {
			w.Webhooks[0].Rules[0].Resources = append(w.Webhooks[0].Rules[0].Resources, "secrets")
		}), denied: true},
		{name: "drop the namespace selector", write: webhookChange(func(w *admissionv1.MutatingWebhookConfiguration) {
			w.Webhooks[0].NamespaceSelector = &metav1.LabelSelector{}
		}), denied: true},
		{name: "drop the object selector", write: webhookChange(func(w *admissionv1.MutatingWebhookConfiguration) {
			w.Webhooks[0].ObjectSelector = &metav1.LabelSelector{}
		}), denied: true},
		{name: "fail closed", write: webhookChange(func(w *admissionv1.MutatingWebhookConfiguration) {
			w.Webhooks[0].FailurePolicy = ptr.To(admissionv1.Fail)
		}), denied: true},
		{name: "point it elsewhere", write: webhookChange(func(w *admissionv1.MutatingWebhookConfiguration) {
			w.Webhooks[0].ClientConfig.URL = ptr.To("https://attacker.example/mutate")
		}), denied: true},
		{name: "add a webhook", write: webhookChange(func(w *admissionv1.MutatingWebhookConfiguration) {
			extra := *w.Webhooks[0].DeepCopy()
			extra.Name = "secrets.albdrain.io"
			w.Webhooks = append(w.Webhooks, extra)
		}), denied: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.write(ctx, sa)
			switch {
			case tc.denied && !refusedByPolicy(err):
				t.Errorf("not refused by the chart's admission policies: %v", err)
			case !tc.denied && err != nil:
				t.Errorf("albdrain's own write refused: %v", err)
			}
		})
	}
	var got corev1.Pod
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(managed), &got); err != nil {
		t.Fatal(err)
	}
	if got.Annotations[contract.DrainingSinceKey] == "" || got.Spec.Containers[0].Image != "app:1" || got.Labels["app"] != "web" {
		t.Errorf("pod after the writes: annotations %v, image %s, labels %v", got.Annotations, got.Spec.Containers[0].Image, got.Labels)
	}
}

// refusedByPolicy tells a refusal by an admission policy from RBAC's.
func refusedByPolicy(err error) bool {
	return err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy")
}

// caBundle is the ConfigMap the CA bundle publisher writes, with data
// instead of its bundle when data is set.
func caBundle(ns, name string, data map[string]string) *corev1.ConfigMap {
	if data == nil {
		data = map[string]string{contract.CABundleFile: "-----BEGIN CERTIFICATE-----\n"}
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "albdrain"}},
		Data:       data,
	}
}

// terminatingPod creates a pod bound to a node; terminating ones are
// deleted and kept by a finalizer, as a kubelet would keep them while their
// preStop hook runs.
func terminatingPod(t *testing.T, c client.Client, ns, name string, labels map[string]string, terminating bool) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod := webPod(ns, labels)
	pod.GenerateName, pod.Name = "", name
	pod.Finalizers = []string{"albdrain.test/keep"}
	pod.Spec.NodeName = "node-1"
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if terminating {
		if err := c.Delete(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			t.Fatal(err)
		}
	}
	return pod
}

func patchPod(ctx context.Context, c client.Client, pod *corev1.Pod, patch string) error {
	return c.Patch(ctx, pod.DeepCopy(), client.RawPatch(types.StrategicMergePatchType, []byte(patch)))
}

// updateWebhook changes albdrain's webhook configuration as its
// certificate rotator does: get, change, update.
func updateWebhook(ctx context.Context, c client.Client, mod func(*admissionv1.MutatingWebhookConfiguration)) error {
	var w admissionv1.MutatingWebhookConfiguration
	if err := c.Get(ctx, client.ObjectKey{Name: releaseName}, &w); err != nil {
		return err
	}
	if w.Labels == nil {
		w.Labels = map[string]string{}
	}
	mod(&w)
	return c.Update(ctx, &w)
}
