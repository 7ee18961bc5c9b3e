package endpoint

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/internal/contract"
)

// TestConcurrentRequestsJoinOneHold checks that a pod has one hold however
// many requests it sends, and cannot queue more than MaxRequestsPerPod.
func TestConcurrentRequestsJoinOneHold(t *testing.T) {
	h := newHolder()
	h.release = make(chan struct{})
	s := newServer(t, h, 10)
	srv := httptest.NewServer(s)
	defer srv.Close()

	codes := make(chan int, MaxRequestsPerPod)
	for range MaxRequestsPerPod {
		go func() { codes <- statusOf(clientFrom(podIP), srv.URL, request()) }()
	}
	<-h.calls
	for waiting := 0; waiting < MaxRequestsPerPod; {
		s.mu.Lock()
		if f := s.flights["uid-1"]; f != nil {
			waiting = f.waiting
		}
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	resp, body := post(t, clientFrom(podIP), srv.URL, request())
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("request beyond the pod's limit: status %s (%s), want 429", resp.Status, body)
	}
	close(h.release)
	for range MaxRequestsPerPod {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("joined request: status %d, want 200", code)
		}
	}
	if n := len(h.calls); n != 0 {
		t.Errorf("%d more holds of the same pod, want one", n)
	}
	wantRefusals(t, s, map[string]float64{contract.RefusedPodLimit: 1})
	if len(s.slots) != 0 {
		t.Errorf("%d slots still taken", len(s.slots))
	}
}

// TestRunningPodCannotHold checks that a pod that is not being deleted is
// refused once the cache has had time to catch up, without a hold.
func TestRunningPodCannotHold(t *testing.T) {
	h := newHolder()
	running := pod()
	running.DeletionTimestamp, running.Finalizers = nil, nil
	s := New(Options{Pods: fakePods(t, running), Holder: h, MaxConcurrent: 10, Metrics: metrics.New()})
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, body := post(t, clientFrom(podIP), srv.URL, request())
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("status %s (%s), want 409", resp.Status, body)
	}
	if n := len(h.calls); n != 0 {
		t.Errorf("%d holds of a running pod", n)
	}
	wantRefusals(t, s, map[string]float64{contract.RefusedNotTerminating: 1})
}

// readSignaller tells the test when the server has read a pod once.
type readSignaller struct {
	client.Client
	read chan struct{}
}

func (r readSignaller) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := r.Client.Get(ctx, key, obj, opts...)
	select {
	case r.read <- struct{}{}:
	default:
	}
	return err
}

// TestCacheLagIsWaitedOut checks that a hold arriving before the cache shows
// its pod's deletion is granted once it does.
func TestCacheLagIsWaitedOut(t *testing.T) {
	h := newHolder()
	stale := pod()
	stale.DeletionTimestamp = nil
	pods := fakePods(t, stale)
	reads := readSignaller{Client: pods, read: make(chan struct{}, 1)}
	s := New(Options{Pods: reads, Holder: h, MaxConcurrent: 10, Metrics: metrics.New()})
	srv := httptest.NewServer(s)
	defer srv.Close()

	code := make(chan int, 1)
	go func() { code <- statusOf(clientFrom(podIP), srv.URL, request()) }()
	<-reads.read // the server saw the pod running
	if err := pods.Delete(context.Background(), stale); err != nil {
		t.Fatal(err)
	}
	if got := <-code; got != http.StatusOK {
		t.Errorf("status %d, want 200 once the deletion shows", got)
	}
	if n := len(h.calls); n != 1 {
		t.Errorf("%d holds, want 1", n)
	}
	wantRefusals(t, s, nil)
}

func fakePods(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
}
