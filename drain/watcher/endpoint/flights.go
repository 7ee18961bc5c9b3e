package endpoint

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/contract"
)

// MaxRequestsPerPod bounds the requests one pod may have waiting on its
// hold; more are answered 429. A helper sends one at a time, so more means
// a pod opening connections to tie up the watcher.
const MaxRequestsPerPod = 4

// flight is the one hold of a pod UID on this replica. Every request of
// that pod waits on it; it runs while any of them waits, so a helper
// retrying after a dropped connection joins rather than starts a second
// hold, and a pod cannot take more than one of the replica's slots.
type flight struct {
	done    chan struct{}
	answer  contract.Answer
	ok      bool
	waiting int
	cancel  context.CancelFunc
}

// joinResult says why a request could not join a flight.
type joinResult int

const (
	joined joinResult = iota
	tooManyForPod
	noSlot
)

// join adds a request to the pod's flight, starting the hold if there is
// none. ctx carries the request's logger; the hold itself ends only when
// its last request leaves or the server stops.
func (s *Server) join(ctx context.Context, pod *corev1.Pod, requested time.Time, budget time.Duration) (*flight, joinResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.flights[pod.UID]; f != nil {
		if f.waiting >= MaxRequestsPerPod {
			return nil, tooManyForPod
		}
		f.waiting++
		return f, joined
	}
	select {
	case s.slots <- struct{}{}:
	default:
		return nil, noSlot
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopOnShutdown := context.AfterFunc(s.stopping, cancel)
	f := &flight{done: make(chan struct{}), waiting: 1, cancel: cancel}
	s.flights[pod.UID] = f
	go func() {
		defer func() { <-s.slots }()
		defer stopOnShutdown()
		defer cancel()
		a, ok := s.opts.Holder.Hold(hctx, pod, requested, budget)
		s.mu.Lock()
		if s.flights[pod.UID] == f {
			delete(s.flights, pod.UID)
		}
		s.mu.Unlock()
		f.answer, f.ok = a, ok
		close(f.done)
	}()
	return f, joined
}

// leave drops a request that went away before its hold ended. The hold is
// abandoned with its last request, and a request arriving after that
// starts a new one rather than join one that is ending.
func (s *Server) leave(uid types.UID, f *flight) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.waiting--
	if f.waiting == 0 {
		f.cancel()
		if s.flights[uid] == f {
			delete(s.flights, uid)
		}
	}
}

// terminatingLag bounds how long a hold request waits for the cache to show
// its pod going away: the helper runs only once the kubelet has seen the
// deletion, but this replica's informer may not have yet.
const (
	terminatingLag   = 5 * time.Second
	terminatingRetry = 100 * time.Millisecond
)

// terminating reports whether the pod is going away, reading it again for
// a few seconds if not, and then once from the apiserver itself when
// LivePods is set, and leaves the newest copy in pod. Only a pod going away
// may hold: a running one would take a slot for nothing, and its helper
// (a container killed by a probe) releases at once on the refusal.
func (s *Server) terminating(ctx context.Context, key types.NamespacedName, pod *corev1.Pod) bool {
	if goingAway(pod) {
		return true
	}
	uid := pod.UID
	read := func(ctx context.Context, r client.Reader) (bool, error) {
		var fresh corev1.Pod
		if err := r.Get(ctx, key, &fresh); err != nil || fresh.UID != uid {
			return false, nil
		}
		*pod = fresh
		return goingAway(pod), nil
	}
	err := wait.PollUntilContextTimeout(ctx, terminatingRetry, terminatingLag, false, func(ctx context.Context) (bool, error) {
		return read(ctx, s.opts.Pods)
	})
	if err == nil {
		return true
	}
	if s.opts.LivePods == nil || ctx.Err() != nil {
		return false
	}
	ok, _ := read(ctx, s.opts.LivePods)
	return ok
}

// goingAway reports whether pod is terminating: deleted through the API, or
// being stopped by its kubelet without a deletion (node-pressure eviction,
// graceful node shutdown), which marks it with a DisruptionTarget condition
// and, once stopped, a final phase. A pod with none of these is staying,
// and a preStop it runs is a container's restart (a failed liveness or
// startup probe), which no hold helps.
func goingAway(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		return true
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
