package endpoint

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

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
	resp    contract.HoldResponse
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
func (s *Server) join(ctx context.Context, pod *corev1.Pod, requested time.Time) (*flight, joinResult) {
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
		resp, ok := s.opts.Holder.Hold(hctx, pod, requested)
		s.mu.Lock()
		if s.flights[pod.UID] == f {
			delete(s.flights, pod.UID)
		}
		s.mu.Unlock()
		f.resp, f.ok = resp, ok
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
// its pod terminating: the helper runs only once the kubelet has seen the
// deletion, but this replica's informer may not have yet.
const (
	terminatingLag   = 5 * time.Second
	terminatingRetry = 100 * time.Millisecond
)

// terminating reports whether the pod is being deleted, reading it again
// for a few seconds if not, and leaves the newest copy in pod. Only a
// terminating pod may hold: a running one would take a slot for nothing.
func (s *Server) terminating(ctx context.Context, key types.NamespacedName, pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil {
		return true
	}
	uid := pod.UID
	err := wait.PollUntilContextTimeout(ctx, terminatingRetry, terminatingLag, false, func(ctx context.Context) (bool, error) {
		var fresh corev1.Pod
		if err := s.opts.Pods.Get(ctx, key, &fresh); err != nil || fresh.UID != uid {
			return false, nil
		}
		*pod = fresh
		return pod.DeletionTimestamp != nil, nil
	})
	return err == nil
}
