package kubelet

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const (
	// defaultGrace is the API's default terminationGracePeriodSeconds.
	defaultGrace = 30 * time.Second
	// minStopGrace is what the kubelet still gives a container to stop after
	// a preStop hook used up the grace period (minimumGracePeriodInSeconds).
	minStopGrace = 2 * time.Second
	// retryAfter spaces retries of a failed API call; the worker's loop
	// ends with the pod or the kubelet, so retries are bounded by those.
	retryAfter = 250 * time.Millisecond
	// maxIPAttempts bounds the search for a pod IP whose ports are free.
	maxIPAttempts = 64
	// maxRemoveAttempts bounds retries of the final delete (about 10s).
	maxRemoveAttempts = 40
)

// podWorker serialises everything the kubelet does for one pod, like the
// kubelet's pod workers: it always acts on the newest version seen.
type podWorker struct {
	mu     sync.Mutex
	latest *corev1.Pod
	notify chan struct{}
	// gone is closed when the pod has left the API.
	gone chan struct{}
}

func newPodWorker() *podWorker {
	return &podWorker{notify: make(chan struct{}, 1), gone: make(chan struct{})}
}

func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.latest = pod
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) poke() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *podWorker) pod() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

// podRuntime is a started pod: its IP, its containers and their environments.
type podRuntime struct {
	k          *Kubelet
	ip         netip.Addr
	containers map[string]*container
	env        map[string][]string
	vols       *podVolumes
	// unmount stops refreshing the projected volumes and removes them.
	unmount context.CancelFunc
}

// runWorker drives one pod from binding to removal.
func (k *Kubelet) runWorker(w *podWorker) {
	var rt *podRuntime
	defer func() {
		if rt != nil {
			rt.stop()
		}
	}()
	retry := func(what string, err error) {
		k.opts.Log.Info("retrying", "pod", w.pod().Namespace+"/"+w.pod().Name, "step", what, "err", err)
		time.AfterFunc(retryAfter, w.poke)
	}
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-w.gone:
			return
		case <-w.notify:
		}
		pod := w.pod()
		switch {
		case pod.Spec.NodeName == "":
			if err := k.bind(pod); err != nil {
				retry("bind", err)
			}
		case pod.Spec.NodeName != k.opts.NodeName:
		case pod.DeletionTimestamp != nil:
			k.terminate(pod, rt)
			rt = nil
			// Stay until the pod leaves the API, so its last updates start
			// nothing new.
			select {
			case <-k.ctx.Done():
			case <-w.gone:
			}
			return
		case rt == nil:
			var err error
			if rt, err = k.startPod(pod); err != nil {
				retry("start", err)
			}
		default:
			if err := k.syncReady(pod); err != nil {
				retry("status", err)
			}
		}
	}
}

// bind is the scheduler's part: every pod goes to this node.
func (k *Kubelet) bind(pod *corev1.Pod) error {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: k.opts.NodeName},
	}
	err := k.cs.CoreV1().Pods(pod.Namespace).Bind(k.ctx, b, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound meanwhile, or deleted: the informer brings the news
	}
	return err
}

// startPod gives the pod an IP, starts its containers (init containers, of
// which albdrain's is the only one the scenarios have, count as completed:
// its install is the executables table) and reports the pod running.
func (k *Kubelet) startPod(pod *corev1.Pod) (*podRuntime, error) {
	vols, err := k.mountVolumes(pod)
	if err != nil {
		return nil, err
	}
	rt := &podRuntime{k: k, containers: map[string]*container{}, env: map[string][]string{}, vols: vols, unmount: func() {}}
	for range maxIPAttempts {
		ip, err := k.ips.allocate()
		if err != nil {
			return nil, err
		}
		rt.ip = ip
		if err = rt.startContainers(pod); err == nil {
			break
		}
		// Most likely another harness on this machine holds the address.
		k.opts.Log.Info("pod IP unusable, trying the next", "ip", ip, "err", err)
		rt.ip = netip.Addr{}
	}
	if !rt.ip.IsValid() {
		os.RemoveAll(vols.dir)
		return nil, fmt.Errorf("no usable loopback IP after %d attempts", maxIPAttempts)
	}
	vctx, unmount := context.WithCancel(k.ctx)
	done := make(chan struct{})
	k.wg.Go(func() { defer close(done); vols.refresh(vctx) })
	rt.unmount = func() { unmount(); <-done }
	if err := k.patchStatus(pod, runningStatus(pod, rt.ip.String())); err != nil {
		rt.stop()
		return nil, err
	}
	k.opts.Log.Info("pod running", "pod", pod.Namespace+"/"+pod.Name, "ip", rt.ip)
	return rt, nil
}

func (rt *podRuntime) startContainers(pod *corev1.Pod) error {
	handler := appHandler(pod.Name, rt.k.opts.ServeTime)
	for _, c := range pod.Spec.Containers {
		env, err := containerEnv(pod, c, rt.ip.String())
		if err != nil {
			rt.kill()
			return err
		}
		for i, e := range env {
			name, value, _ := strings.Cut(e, "=")
			env[i] = name + "=" + rt.vols.hostPath(c, value)
		}
		ct, err := startContainer(c, rt.ip, handler, rt.k.opts.Log)
		if err != nil {
			rt.kill()
			return err
		}
		rt.env[c.Name] = env
		rt.containers[c.Name] = ct
	}
	return nil
}

// kill stops every container at once.
func (rt *podRuntime) kill() {
	for name, ct := range rt.containers {
		ct.kill()
		delete(rt.containers, name)
	}
}

// stop kills the containers and unmounts the volumes of a started pod.
func (rt *podRuntime) stop() {
	rt.kill()
	rt.unmount()
}

// syncReady reports the Ready condition anew when a readiness gate changed.
func (k *Kubelet) syncReady(pod *corev1.Pod) error {
	want := readyCondition(pod, true)
	if have := condition(pod, corev1.PodReady); have != nil && have.Status == want.Status && have.Reason == want.Reason {
		return nil
	}
	return k.patchStatus(pod, corev1.PodStatus{Conditions: []corev1.PodCondition{want}})
}

// terminate is the kubelet's graceful stop: each container runs its preStop
// hook and is then stopped, in parallel, within the grace period counted
// from now; then the pod is removed from the API.
func (k *Kubelet) terminate(pod *corev1.Pod, rt *podRuntime) {
	grace := defaultGrace
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	k.begin(pod)
	t := Termination{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, Noticed: time.Now(), Grace: grace}
	if rt != nil {
		t.IP = rt.ip.String()
		deadline := t.Noticed.Add(grace)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, c := range pod.Spec.Containers {
			ct := rt.containers[c.Name]
			wg.Go(func() {
				if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
					hookCtx, cancel := context.WithDeadline(k.ctx, deadline)
					run := rt.runPreStop(hookCtx, c)
					cancel()
					mu.Lock()
					t.Hooks = append(t.Hooks, run)
					mu.Unlock()
				}
				stopCtx, cancel := context.WithTimeout(k.ctx, max(time.Until(deadline), minStopGrace))
				defer cancel()
				if ct.stop(stopCtx) {
					mu.Lock()
					t.Killed = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		rt.containers = nil
		rt.unmount()
		t.Stopped = time.Now()
	}
	k.remove(pod)
	t.Removed = time.Now()
	k.record(t)
	k.opts.Log.Info("pod removed", "pod", pod.Namespace+"/"+pod.Name, "hold", t.Hold(), "killed", t.Killed)
}

// remove deletes the pod with no grace left, as the kubelet does once its
// containers are gone; the UID guards a same-named successor.
func (k *Kubelet) remove(pod *corev1.Pod) {
	for range maxRemoveAttempts {
		err := k.cs.CoreV1().Pods(pod.Namespace).Delete(k.ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return
		}
		k.opts.Log.Info("retrying pod removal", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		t := time.NewTimer(retryAfter)
		select {
		case <-k.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	k.opts.Log.Error("gave up removing pod", "pod", pod.Namespace+"/"+pod.Name)
}
