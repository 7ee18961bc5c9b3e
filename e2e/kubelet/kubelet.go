// Package kubelet stands in for the scheduler and the kubelet of a one-node
// cluster, so that pods created by real controllers run for real: every pod
// is bound to the node, gets its own loopback IP (127.x.y.z) and serves HTTP
// there on its container ports. Its status reports that IP and the
// conditions a kubelet would, Ready only once the containers serve and every
// readiness gate is True. On graceful deletion it does what the kubelet does:
// runs each container's preStop hook (exec as a real subprocess with the
// container's downward-API environment, the native sleep action, httpGet),
// then stops the container as SIGTERM would (stop accepting, finish in-flight
// requests), all within the grace period, and removes the pod.
//
// There are no images. A container is always the same small HTTP
// application, and the files an exec hook may run come from
// Options.Executables: mapping contract.HelperPath to a built albdrain-hold
// stands in for what albdrain's init container installs.
package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// nodeIP is the node's address: a loopback address of its own, not the
// 127.0.0.1 the ALB emulator connects from, so that the helper, which
// ignores the node's connections (the kubelet's probes), sees the
// emulator's as load-balancer traffic, as pods on a real node would.
const nodeIP = "127.0.0.2"

// DefaultNodeName is the node's name when Options leave it empty.
const DefaultNodeName = "local"

// Options configure a Kubelet.
type Options struct {
	// NodeName is the node to register; default DefaultNodeName.
	NodeName string
	// Executables maps paths inside containers to host executables; an
	// exec hook's program must be one of them.
	Executables map[string]string
	// ServeTime is how long the application works on each request.
	ServeTime time.Duration
	// Log receives the kubelet's own log; default discards.
	Log *slog.Logger
	// VolumeRefresh is how often projected volumes are rewritten; default
	// 2s.
	VolumeRefresh time.Duration
}

// Kubelet runs the pods of one node. Create it with Start.
type Kubelet struct {
	opts   Options
	cs     kubernetes.Interface
	volDir string // pods' projected volumes
	ips    *ipAllocator
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu           sync.Mutex
	workers      map[types.UID]*podWorker
	terminations []Termination
	// stopping are the pods whose termination has begun and not ended.
	stopping map[types.UID]types.NamespacedName
}

// Start registers a Ready node and begins binding and running pods.
func Start(ctx context.Context, cfg *rest.Config, opts Options) (*Kubelet, error) {
	if opts.NodeName == "" {
		opts.NodeName = DefaultNodeName
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.VolumeRefresh <= 0 {
		opts.VolumeRefresh = defaultVolumeRefresh
	}
	cfg = rest.CopyConfig(cfg)
	// A rollout patches many pod statuses at once; client-side throttling
	// would delay readiness in a way no real kubelet fleet sees.
	cfg.QPS, cfg.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := registerNode(ctx, cs, opts.NodeName); err != nil {
		return nil, err
	}
	volDir, err := os.MkdirTemp("", "kubelet-volumes-")
	if err != nil {
		return nil, err
	}
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k := &Kubelet{opts: opts, cs: cs, volDir: volDir, ips: newIPAllocator(), ctx: kctx, cancel: cancel, workers: map[types.UID]*podWorker{}, stopping: map[types.UID]types.NamespacedName{}}

	factory := informers.NewSharedInformerFactory(cs, 0)
	pods := factory.Core().V1().Pods().Informer()
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.observe(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { k.observe(obj.(*corev1.Pod)) },
		DeleteFunc: k.forget,
	}); err != nil {
		cancel()
		os.RemoveAll(volDir)
		return nil, err
	}
	factory.Start(kctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced) {
		cancel()
		factory.Shutdown()
		os.RemoveAll(volDir)
		return nil, fmt.Errorf("pod informer did not sync: %w", ctx.Err())
	}
	k.wg.Go(func() {
		<-kctx.Done()
		factory.Shutdown()
	})
	return k, nil
}

// Stop stops every pod at once, as a node losing power would, and waits for
// them.
func (k *Kubelet) Stop() {
	k.cancel()
	k.wg.Wait()
	os.RemoveAll(k.volDir)
}

// NodeName is the node this kubelet registered.
func (k *Kubelet) NodeName() string { return k.opts.NodeName }

// Terminations returns the graceful terminations carried out so far, in the
// order they ended.
func (k *Kubelet) Terminations() []Termination {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Termination(nil), k.terminations...)
}

// Stopping returns the pods of namespace whose termination has begun and
// not ended: their preStop hooks, and so their helpers, may still run.
func (k *Kubelet) Stopping(namespace string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, p := range k.stopping {
		if p.Namespace == namespace {
			out = append(out, p.Name)
		}
	}
	return out
}

func (k *Kubelet) begin(pod *corev1.Pod) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopping[pod.UID] = types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
}

func (k *Kubelet) record(t Termination) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.terminations = append(k.terminations, t)
	delete(k.stopping, t.UID)
}

func registerNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}
	node, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		node, err = cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("register node %s: %w", name, err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	now := metav1.Now()
	node.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Addresses:   []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeIP}, {Type: corev1.NodeHostName, Address: name}},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "stand-in kubelet is posting ready status",
			LastHeartbeatTime: now, LastTransitionTime: now,
		}},
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s status: %w", name, err)
	}
	return nil
}

// observe hands the newest version of a pod to its worker, starting one for
// a pod not seen before.
func (k *Kubelet) observe(pod *corev1.Pod) {
	k.mu.Lock()
	defer k.mu.Unlock()
	w, ok := k.workers[pod.UID]
	if !ok {
		if k.ctx.Err() != nil {
			return
		}
		w = newPodWorker()
		k.workers[pod.UID] = w
		k.wg.Go(func() { k.runWorker(w) })
	}
	w.update(pod)
}

// forget tells a pod's worker the pod is gone from the API.
func (k *Kubelet) forget(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if w, ok := k.workers[pod.UID]; ok {
		close(w.gone)
		delete(k.workers, pod.UID)
	}
}
