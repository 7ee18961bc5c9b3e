package lbcreact

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// gateTimes notes when each pod's readiness-gate condition was first seen,
// and as what, from a watch on the namespace's pods.
type gateTimes struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	seen    map[string]time.Time
	first   map[string]corev1.PodCondition
	changed chan struct{}
}

func watchGates(ctx context.Context, cs kubernetes.Interface, ns string, gate corev1.PodConditionType) (*gateTimes, error) {
	ctx, cancel := context.WithCancel(ctx)
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		return nil, err
	}
	g := &gateTimes{cancel: cancel, done: make(chan struct{}), seen: map[string]time.Time{}, first: map[string]corev1.PodCondition{}, changed: make(chan struct{})}
	go func() {
		defer close(g.done)
		defer w.Stop()
		for ev := range w.ResultChan() {
			at := time.Now()
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			for _, c := range p.Status.Conditions {
				if c.Type == gate {
					g.note(p.Name, at, c)
				}
			}
		}
	}()
	return g, nil
}

func (g *gateTimes) note(pod string, at time.Time, c corev1.PodCondition) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.seen[pod]; ok {
		return
	}
	g.seen[pod], g.first[pod] = at, c
	close(g.changed)
	g.changed = make(chan struct{})
}

// wait returns when pod's gate condition was first seen.
func (g *gateTimes) wait(ctx context.Context, pod string) (time.Time, error) {
	for {
		g.mu.Lock()
		at, ok := g.seen[pod]
		ch := g.changed
		g.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-ch:
		case <-g.done:
			return time.Time{}, errors.New("pod watch ended")
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// firstWritten counts the gate conditions as first written, by status,
// reason and message.
func (g *gateTimes) firstWritten() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for _, c := range g.first {
		out[fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)]++
	}
	return out
}

func (g *gateTimes) stop() {
	g.cancel()
	<-g.done
}
