package node_test

import (
	"context"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// exit is how a deleted pod's container ended, as its kubelet reported it
// before the pod went away.
type exit struct {
	pod string
	// deadline is the pod's first deletion timestamp: when its grace
	// period, graceSeconds long, ends.
	deadline     metav1.Time
	graceSeconds int64
	state        corev1.ContainerStateTerminated
}

// exitWatch records, for each pod of a namespace deleted while it watches,
// the last terminated state the kubelet reported for one container (zero
// if it reported none).
type exitWatch struct {
	stop  context.CancelFunc
	done  chan struct{}
	mu    sync.Mutex
	exits map[string]exit
}

// watchExits watches the pods of ns for container's exits until Stop.
func watchExits(ctx context.Context, t *testing.T, cfg *rest.Config, ns, container string) *exitWatch {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ew := &exitWatch{stop: cancel, done: make(chan struct{}), exits: map[string]exit{}}
	go func() {
		defer close(ew.done)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				pod, isPod := ev.Object.(*corev1.Pod)
				if !isPod || ev.Type == watch.Error || pod.DeletionTimestamp == nil {
					continue
				}
				ew.mu.Lock()
				e, seen := ew.exits[pod.Name]
				if !seen {
					// The first deletion counts: the kubelet's final delete
					// restarts the clock with a grace period of 0.
					e = exit{pod: pod.Name, deadline: *pod.DeletionTimestamp, graceSeconds: ptr.Deref(pod.DeletionGracePeriodSeconds, 0)}
				}
				for _, st := range pod.Status.ContainerStatuses {
					if st.Name == container && st.State.Terminated != nil {
						e.state = *st.State.Terminated
					}
				}
				ew.exits[pod.Name] = e
				ew.mu.Unlock()
			}
		}
	}()
	return ew
}

// Stop ends the watch and returns the exits seen.
func (w *exitWatch) Stop() []exit {
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]exit, 0, len(w.exits))
	for _, e := range w.exits {
		out = append(out, e)
	}
	return out
}
