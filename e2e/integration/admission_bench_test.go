package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/webhook"
	"github.com/albdrain/albdrain/webhook/inject"
	"github.com/albdrain/albdrain/webhook/webhooktest"
)

// BenchmarkAdmission measures one pod review through the real handler over
// a real informer cache holding 1,000 Services, 200 Ingresses and 200
// TargetGroupBindings in the pod's namespace ("crowded"), against two
// baselines measured in the same run: the same review in an empty namespace,
// where nothing matches and nothing is injected, and in a namespace holding
// only the pod's own Service, binding and Ingress ("own"), where the same
// mutation is made. crowded against own is the cost of the namespace's size.
func BenchmarkAdmission(b *testing.B) {
	// The handler logs through controller-runtime, which without a logger
	// prints a warning and a stack trace in the middle of the results.
	ctrllog.SetLogger(logr.Discard())
	env := kubetest.Start(b, kubetest.WithTargetGroupBindingCRD())
	ctx := context.Background()
	if err := env.Client.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "alb"},
		Spec: networkingv1.IngressClassSpec{Controller: lbc.ALBController}}); err != nil {
		b.Fatal(err)
	}
	populate(b, env.Client, "crowded", 0, 1000, 200, 200)
	// The pod's own Service (svc-500) and its binding and Ingress only.
	populate(b, env.Client, "own", 500, 1, 1, 1)
	for _, ns := range []string{"empty"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
	}
	c, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		b.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := lbc.RegisterIndexes(cctx, c, lbc.APITargetGroupBinding); err != nil {
		b.Fatal(err)
	}
	for _, o := range []client.Object{&corev1.Service{}, &networkingv1.Ingress{}, &networkingv1.IngressClass{}, &lbc.TargetGroupBinding{}} {
		if _, err := c.GetInformer(cctx, o); err != nil {
			b.Fatal(err)
		}
	}
	go func() { _ = c.Start(cctx) }()
	if !c.WaitForCacheSync(cctx) {
		b.Fatal("cache did not sync")
	}
	d := &webhook.PodDefaulter{
		Finder: &lbc.Finder{Reader: c, Served: lbc.NewAPISet(lbc.APITargetGroupBinding)},
		Options: inject.Options{Mode: contract.ModeWait, MaxHold: 330 * time.Second, Sleep: 30 * time.Second, Fallback: 30 * time.Second,
			QuietPeriod: 3 * time.Second, ShutdownBudget: 30 * time.Second, HelperImage: "albdrain:bench", HelperImagePath: "/albdrain-hold",
			WatcherURL: "https://albdrain.albdrain.svc:8443"},
		Metrics: webhook.NewMetrics(),
	}
	h := &admission.Webhook{Handler: webhook.NewPatchHandler(env.Scheme, d)}
	// The pod matches the 500th Service, which one binding and one Ingress
	// expose. It is as the apiserver sends it: defaulted, from a Deployment,
	// with the usual environment, resources and probe.
	raw := webhooktest.Pod(`"labels":{"app":"svc-500","pod-template-hash":"5d8f7c9b6"},"ownerReferences":[{"apiVersion":"apps/v1",`+
		`"kind":"ReplicaSet","name":"web-5d8f7c9b6","uid":"6f1c1f8e-0000-4000-8000-000000000001","controller":true,"blockOwnerDeletion":true}]`,
		`"containers":[`+webhooktest.App("app", `,"env":[{"name":"LOG_LEVEL","value":"info"},{"name":"DB_HOST","value":"db.example.internal"},`+
			`{"name":"POD_NAME","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}}],`+
			`"readinessProbe":{"httpGet":{"path":"/healthz","port":"http","scheme":"HTTP"},"periodSeconds":10,"timeoutSeconds":1,`+
			`"successThreshold":1,"failureThreshold":3}`)+`]`)
	// Everything was created before the cache synced, so the first review must inject.
	if r := h.Handle(ctx, webhooktest.Request("crowded", raw)); len(r.Patches) == 0 {
		b.Fatalf("no injection in the crowded namespace: %+v", r.Result)
	}

	p99 := measure(b, h, max(b.N, 200), webhooktest.Request("empty", raw), webhooktest.Request("own", raw), webhooktest.Request("crowded", raw))
	base, own, crowd := p99[0], p99[1], p99[2]
	crowdReq := webhooktest.Request("crowded", raw)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.Handle(ctx, crowdReq)
	}
	b.StopTimer()
	b.ReportMetric(float64(crowd.Microseconds()), "p99-us")
	b.ReportMetric(float64(base.Microseconds()), "baseline-p99-us")
	b.ReportMetric(float64(own.Microseconds()), "own-p99-us")
	b.ReportMetric(float64(crowd)/float64(max(base, time.Nanosecond)), "p99-ratio")
	b.ReportMetric(float64(crowd)/float64(max(own, time.Nanosecond)), "p99-ratio-own")
	allocs := func(ns string) float64 {
		req := webhooktest.Request(ns, raw)
		return testing.AllocsPerRun(100, func() { h.Handle(context.Background(), req) })
	}
	b.ReportMetric(allocs("own"), "own-allocs")
	b.ReportMetric(allocs("empty"), "baseline-allocs")
}

// measure runs each review n times, taking them in turn so that a load on
// the machine that comes and goes (the rotation bench runs this during a
// node drain) weighs on each alike, and returns each one's 99th
// percentile.
func measure(b *testing.B, h admission.Handler, n int, reqs ...admission.Request) []time.Duration {
	durs := make([][]time.Duration, len(reqs))
	for range n {
		for i, req := range reqs {
			start := time.Now()
			r := h.Handle(context.Background(), req)
			durs[i] = append(durs[i], time.Since(start))
			if !r.Allowed {
				b.Fatalf("denied: %v", r.Result)
			}
		}
	}
	p99 := make([]time.Duration, len(reqs))
	for i, d := range durs {
		slices.Sort(d)
		p99[i] = d[len(d)*99/100]
	}
	return p99
}

// populate creates namespace ns with Services svc-<first> onwards, each
// selecting the pods labelled app=<its name>, and bindings and Ingresses
// spread over them.
func populate(b *testing.B, cl client.Client, ns string, first, services, ingresses, bindings int) {
	ctx := context.Background()
	must := func(o client.Object) {
		if err := cl.Create(ctx, o); err != nil {
			b.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
	must(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	name := func(i int) string { return fmt.Sprintf("svc-%d", first+i) }
	for i := range services {
		// Headless: the test apiserver's service IP range holds only a few hundred.
		must(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name(i), Namespace: ns}, Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{"app": name(i)},
			Ports:     []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		}})
	}
	// Spread the bindings and Ingresses over the Services, so one lands on svc-500.
	for i := range bindings {
		svc := name(i * services / bindings)
		must(&lbc.TargetGroupBinding{ObjectMeta: metav1.ObjectMeta{Name: "tgb-" + svc, Namespace: ns}, Spec: lbc.TargetGroupBindingSpec{
			TargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/" + svc + "/1",
			TargetType:     ptr.To(lbc.TargetTypeIP), ServiceRef: lbc.ServiceReference{Name: svc, Port: intstr.FromInt32(80)},
		}})
	}
	for i := range ingresses {
		svc := name(i * services / ingresses)
		must(&networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "ing-" + svc, Namespace: ns, Annotations: map[string]string{lbc.TargetTypeAnnotation: "ip"}},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("alb"), DefaultBackend: &networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}},
		})
	}
}
