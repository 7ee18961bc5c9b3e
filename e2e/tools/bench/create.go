package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/webhook"
)

// CreateOverheadTargetMillis is the bound on what the webhook adds
// to a pod CREATE's p99.
const CreateOverheadTargetMillis = 5

// The crowd the webhook looks through, as in the handler benchmark.
const (
	crowdServices  = 1000
	crowdIngresses = 200
	// crowdTarget is the Service the measured pods belong to, exposed by a
	// TargetGroupBinding and an Ingress.
	crowdTarget = "svc-500"
)

// CreateOptions shape the pod CREATE measurement.
type CreateOptions struct {
	// N pods are created each way.
	N int
	// Manager is albdrain's manager binary; Dir receives its kubeconfig and log.
	Manager, Dir string
	// Progress receives a line at each step.
	Progress func(format string, args ...any)
}

// MeasureCreate times pod CREATEs through a real kube-apiserver with
// albdrain's webhook registered as its chart registers it and served by the
// manager binary in its own process: one at a time, alternating between a
// namespace opted in to albdrain (the apiserver calls the webhook over TLS
// and applies its patch) and one that is not (no webhook call), o.N of
// each after a warm-up. Both namespaces hold 1,000 Services, 200 Ingresses
// and a TargetGroupBinding exposing the pods, so every pod of the opted-in
// one is mutated.
func MeasureCreate(ctx context.Context, o CreateOptions) (_ *Section, err error) {
	o.Progress("starting kube-apiserver and etcd with albdrain's webhook registered, and albdrain's manager")
	wh, err := cluster.WebhookConfiguration()
	if err != nil {
		return nil, err
	}
	env, stopEnv, err := kubetest.Run(kubetest.WithTargetGroupBindingCRD(), kubetest.WithMutatingWebhooks(wh))
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stopEnv()) }()
	m, err := newManagerSetup(ctx, env, o.Manager, o.Dir)
	if err != nil {
		return nil, err
	}
	mgr, err := m.start(ctx, "create")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, mgr.stop()) }()
	cl, err := unthrottledClient(env.Config)
	if err != nil {
		return nil, err
	}

	const withNS, withoutNS = "bench-create-albdrain", "bench-create-baseline"
	o.Progress("creating %d Services, %d Ingresses and a TargetGroupBinding in each of %s and %s", crowdServices, crowdIngresses, withNS, withoutNS)
	objs := []client.Object{
		albIngressClass(),
		namespace(withNS, map[string]string{contract.InjectKey: "enabled"}),
		namespace(withoutNS, nil),
	}
	if err := createAll(ctx, cl, objs); err != nil {
		return nil, err
	}
	// The namespaces differ in the opt-in label only.
	objs = nil
	for _, ns := range []string{withNS, withoutNS} {
		objs = append(objs, binding(ns, crowdTarget, "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/"+ns+"/0123456789abcdef"))
		for i := range crowdServices {
			objs = append(objs, service(ns, fmt.Sprintf("svc-%d", i)))
		}
		for i := range crowdIngresses {
			objs = append(objs, ingress(ns, fmt.Sprintf("svc-%d", i*crowdServices/crowdIngresses)))
		}
	}
	if err := createAll(ctx, cl, objs); err != nil {
		return nil, err
	}
	// The webhook reads through its cache; wait until it has the binding.
	if err := waitMutated(ctx, cl, withNS); err != nil {
		return nil, err
	}

	o.Progress("timing %d pod CREATEs with albdrain's webhook and %d without, alternating", o.N, o.N)
	const warmup = 20
	var with, without []time.Duration
	var served0, served1 webhookServed
	for i := range warmup + o.N {
		first, second := withNS, withoutNS
		if i%2 == 1 {
			first, second = second, first
		}
		for _, ns := range []string{first, second} {
			d, err := timeCreate(ctx, cl, ns, fmt.Sprintf("web-%d", i), ns == withNS)
			if err != nil {
				return nil, err
			}
			if i == warmup-1 && ns == second {
				if served0, err = webhookServedNow(ctx, mgr); err != nil {
					return nil, err
				}
			}
			switch {
			case i < warmup:
			case ns == withNS:
				with = append(with, d)
			default:
				without = append(without, d)
			}
		}
	}
	if served1, err = webhookServedNow(ctx, mgr); err != nil {
		return nil, err
	}

	s := &Section{Name: "webhook", Notes: []string{
		fmt.Sprintf("create: %d pod CREATEs through a real kube-apiserver each way, one at a time, alternating: in a namespace opted in to albdrain", o.N),
		"(webhook over TLS, served by the manager binary in its own process; pod mutated) and in one not opted in (no webhook call),",
		"each with 1,000 Services, 200 Ingresses and the pods' TargetGroupBinding; server: the manager's own histogram of a review",
	}}
	wp99, bp99 := percentile(millis(with), 99), percentile(millis(without), 99)
	s.Add("create_p99_ms_albdrain", wp99)
	s.Add("create_p99_ms_baseline", bp99)
	s.Add("create_p50_ms_albdrain", percentile(millis(with), 50))
	s.Add("create_p50_ms_baseline", percentile(millis(without), 50))
	s.Add("create_p99_overhead_ms", wp99-bp99)
	s.Add("creates_per_arm", float64(o.N))
	s.Add("server_mean_ms", 1000*(served1.seconds-served0.seconds)/(served1.count-served0.count))
	// One review per CREATE: more would mean the apiserver reinvokes the webhook.
	s.Add("reviews_per_create", (served1.count-served0.count)/float64(o.N))
	s.Add("create_p90_ms_albdrain", percentile(millis(with), 90))
	s.Add("create_p90_ms_baseline", percentile(millis(without), 90))
	s.Add("create_max_ms_albdrain", maximum(millis(with)))
	s.Add("create_max_ms_baseline", maximum(millis(without)))
	s.Compare(Comparison{
		What: "pod CREATE p99 (ms)", Value: wp99, Baseline: bp99, BaselineWhat: "no webhook",
		Target: fmt.Sprintf("overhead < %d ms (%.2g ms)", CreateOverheadTargetMillis, wp99-bp99),
		Met:    wp99-bp99 < CreateOverheadTargetMillis,
	})
	return s, nil
}

// timeCreate creates one pod and checks the webhook did (or did not) mutate
// it, so a measurement of unmutated pods cannot pass for albdrain's.
func timeCreate(ctx context.Context, cl client.Client, ns, name string, wantMutated bool) (time.Duration, error) {
	pod := appPod(ns, name, crowdTarget, "")
	start := time.Now()
	err := cl.Create(ctx, pod)
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("create pod %s/%s: %w", ns, name, err)
	}
	if mutated := pod.Annotations[contract.InjectedKey] != ""; mutated != wantMutated {
		return 0, fmt.Errorf("pod %s/%s: mutated %v, want %v", ns, name, mutated, wantMutated)
	}
	return d, nil
}

// waitMutated creates probe pods until the webhook mutates one.
func waitMutated(ctx context.Context, cl client.Client, ns string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := 0; ; i++ {
		pod := appPod(ns, fmt.Sprintf("probe-%d", i), crowdTarget, "")
		if err := cl.Create(ctx, pod); err != nil {
			return fmt.Errorf("create probe pod: %w", err)
		}
		if pod.Annotations[contract.InjectedKey] != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("albdrain's webhook did not mutate a pod behind a TargetGroupBinding within 30s")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// webhookServed is controller-runtime's histogram of the time albdrain's
// webhook server spent on reviews: read, handled, answered.
type webhookServed struct {
	seconds, count float64
}

// webhookServedNow reads it from the manager's metrics.
func webhookServedNow(ctx context.Context, mgr *managerProcess) (webhookServed, error) {
	const series = "controller_runtime_webhook_latency_seconds"
	label := `{webhook="` + webhook.Path + `"}`
	sum, err := mgr.metric(ctx, series+"_sum"+label)
	if err != nil {
		return webhookServed{}, err
	}
	count, err := mgr.metric(ctx, series+"_count"+label)
	return webhookServed{seconds: sum, count: count}, err
}
