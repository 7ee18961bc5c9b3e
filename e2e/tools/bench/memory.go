package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/webhook/inject"
)

// MemoryTargetMiB is the bound on the manager's resident memory.
const MemoryTargetMiB = 100

// MemoryOptions shape the memory measurement.
type MemoryOptions struct {
	// Pods are created in the apiserver, Managed of them as albdrain's
	// webhook would have mutated them; then Services more Services, which
	// the manager caches all of.
	Pods, Managed, Services int
	// Manager is albdrain's manager binary; Dir receives its kubeconfig,
	// certificate and logs.
	Manager, Dir string
	// Settle is how long after the manager is ready its memory is read.
	Settle time.Duration
	// Progress receives a line at each step.
	Progress func(format string, args ...any)
}

// Namespaces the pods are spread over: an opted-in one per managedSpread,
// plain ones for the rest.
const (
	unmanagedSpread = 16
	managedSpread   = 4
)

// MeasureMemory runs albdrain's manager binary (webhook and watcher, as
// deployed) as a separate process against a real kube-apiserver three
// times: with no pods (the baseline), with the unmanaged pods only, and with
// all of them, and reads its memory once its cache has synced and settled.
// The middle reading shows the cache holds managed pods only: pods albdrain
// does not manage must cost it next to nothing.
func MeasureMemory(ctx context.Context, o MemoryOptions) (_ *Section, err error) {
	o.Progress("starting kube-apiserver and etcd")
	env, stopEnv, err := kubetest.Run(kubetest.WithTargetGroupBindingCRD())
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stopEnv()) }()
	m, err := newManagerSetup(ctx, env, o.Manager, o.Dir)
	if err != nil {
		return nil, err
	}
	cl, err := unthrottledClient(env.Config)
	if err != nil {
		return nil, err
	}

	o.Progress("albdrain's manager with no pods in the cluster")
	none, err := readMemory(ctx, m, "none", o.Settle)
	if err != nil {
		return nil, err
	}
	unmanaged := o.Pods - o.Managed
	o.Progress("creating %d pods albdrain does not manage", unmanaged)
	if err := createUnmanaged(ctx, cl, unmanaged); err != nil {
		return nil, err
	}
	o.Progress("albdrain's manager with %d unmanaged pods in the cluster", unmanaged)
	plain, err := readMemory(ctx, m, "unmanaged", o.Settle)
	if err != nil {
		return nil, err
	}
	o.Progress("creating %d managed pods", o.Managed)
	if err := createManaged(ctx, cl, o.Managed); err != nil {
		return nil, err
	}
	o.Progress("albdrain's manager with %d pods in the cluster, %d managed", o.Pods, o.Managed)
	full, err := readMemory(ctx, m, "full", o.Settle)
	if err != nil {
		return nil, err
	}

	o.Progress("creating %d Services", o.Services)
	if err := createServices(ctx, cl, o.Services); err != nil {
		return nil, err
	}
	o.Progress("albdrain's manager with %d pods, %d managed, and %d more Services", o.Pods, o.Managed, o.Services)
	withServices, err := readMemory(ctx, m, "services", o.Settle)
	if err != nil {
		return nil, err
	}

	perUnmanaged := (plain.HeapInuse - none.HeapInuse) * 1024 / float64(unmanaged)
	perManaged := (full.HeapInuse - plain.HeapInuse) * 1024 / float64(o.Managed)
	s := &Section{Name: "memory", Notes: []string{
		"albdrain's manager binary (webhook and watcher) as its own process against a real kube-apiserver, read " + o.Settle.String() + " after /readyz",
		fmt.Sprintf("(the hold server listens only once the cache has synced): with no pods, with %d unmanaged pods, and with all %d of which %d managed;",
			unmanaged, o.Pods, o.Managed),
		"managed pods are mutated by albdrain's inject.Apply and carry a running pod's status; RSS is VmRSS, peak is VmHWM",
	}}
	s.Add("watcher_rss_mib", full.RSS)
	s.Add("watcher_rss_peak_mib", full.HWM)
	s.Add("watcher_heap_inuse_mib", full.HeapInuse)
	s.Add("cluster_pods", float64(o.Pods))
	s.Add("managed_pods", float64(o.Managed))
	s.Add("baseline_rss_mib", none.RSS)
	s.Add("baseline_heap_inuse_mib", none.HeapInuse)
	s.Add("unmanaged_only_rss_mib", plain.RSS)
	s.Add("unmanaged_only_heap_inuse_mib", plain.HeapInuse)
	s.Add("heap_per_managed_pod_kib", perManaged)
	s.Add("heap_per_unmanaged_pod_kib", perUnmanaged)
	s.Add("services", float64(o.Services))
	s.Add("with_services_rss_mib", withServices.RSS)
	s.Add("with_services_rss_peak_mib", withServices.HWM)
	s.Add("with_services_heap_inuse_mib", withServices.HeapInuse)
	s.Add("heap_per_service_kib", (withServices.HeapInuse-full.HeapInuse)*1024/float64(max(o.Services, 1)))
	s.Compare(Comparison{
		What: fmt.Sprintf("manager RSS, %d pods / %d managed (MiB)", o.Pods, o.Managed), Value: full.RSS,
		Baseline: none.RSS, BaselineWhat: "no pods",
		Target: fmt.Sprintf("< %d MiB (peak %.3g)", MemoryTargetMiB, full.HWM), Met: full.RSS < MemoryTargetMiB && full.HWM < MemoryTargetMiB,
	})
	s.Compare(Comparison{
		What: "heap per pod in the cluster (KiB)", Value: perUnmanaged, Baseline: perManaged, BaselineWhat: "per managed pod",
		Target: "unmanaged < 1/4 of managed: cache holds managed pods only", Met: perUnmanaged < perManaged/4,
	})
	return s, nil
}

// readMemory runs the manager until it is ready and settled, and reads its
// memory.
func readMemory(ctx context.Context, m *managerSetup, name string, settle time.Duration) (memory, error) {
	p, err := m.start(ctx, name)
	if err != nil {
		return memory{}, err
	}
	mem, err := p.settle(ctx, settle)
	return mem, errors.Join(err, p.stop())
}

func createUnmanaged(ctx context.Context, cl client.Client, n int) error {
	var objs []client.Object
	for k := range unmanagedSpread {
		ns := fmt.Sprintf("bench-apps-%d", k)
		objs = append(objs, namespace(ns, nil), service(ns, "web"))
	}
	if err := createAll(ctx, cl, objs); err != nil {
		return err
	}
	return parallel(ctx, n, func(ctx context.Context, i int) error {
		return cl.Create(ctx, appPod(fmt.Sprintf("bench-apps-%d", i%unmanagedSpread), fmt.Sprintf("web-%d", i), "web", fmt.Sprintf("node-%d", i%100)))
	})
}

// createServices creates n Services over the unmanaged pods' namespaces,
// each selecting pods of its own.
func createServices(ctx context.Context, cl client.Client, n int) error {
	return parallel(ctx, n, func(ctx context.Context, i int) error {
		return cl.Create(ctx, service(fmt.Sprintf("bench-apps-%d", i%unmanagedSpread), fmt.Sprintf("svc-%d", i)))
	})
}

// createManaged creates pods as albdrain's webhook leaves them, behind a
// TargetGroupBinding, and gives them a running pod's status: that is what
// the watcher's cache holds.
func createManaged(ctx context.Context, cl client.Client, n int) error {
	var objs []client.Object
	for k := range managedSpread {
		ns := fmt.Sprintf("bench-held-%d", k)
		arn := fmt.Sprintf("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/bench-held-%d/0123456789abcdef", k)
		objs = append(objs, namespace(ns, map[string]string{contract.InjectKey: "enabled"}), service(ns, "web"), binding(ns, "web", arn))
	}
	if err := createAll(ctx, cl, objs); err != nil {
		return err
	}
	opts := inject.Options{
		Mode: contract.ModeWait, MaxHold: 330 * time.Second, Sleep: 30 * time.Second, Fallback: 30 * time.Second,
		QuietPeriod: 3 * time.Second, ShutdownBudget: 30 * time.Second, HelperImage: "registry.example/albdrain:1.0.0",
		HelperImagePath: "/albdrain-hold", WatcherURL: "https://albdrain.albdrain.svc:8443",
	}
	targets := []lbc.Backend{{Service: "web", TargetPort: intstr.FromString(appPortName), TargetGroupBinding: "web"}}
	return parallel(ctx, n, func(ctx context.Context, i int) error {
		pod := appPod(fmt.Sprintf("bench-held-%d", i%managedSpread), fmt.Sprintf("web-%d", i), "web", fmt.Sprintf("node-%d", i%100))
		if _, injected, err := inject.Apply(pod, targets, opts); err != nil || !injected {
			return fmt.Errorf("inject pod %s: injected %v, %v", pod.Name, injected, err)
		}
		if err := cl.Create(ctx, pod); err != nil {
			return err
		}
		pod.Status = runningStatus(pod, fleetIP(i))
		return cl.Status().Update(ctx, pod)
	})
}
