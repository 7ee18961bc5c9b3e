package faults_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/internal/contract"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A pod's hold outcome is counted once across replicas. A helper whose
// answer was lost sends the same request again, and the Service may take it
// to another replica: here the test sends each request to both replicas'
// own addresses in turn, as that helper would. Of the two replicas that end
// the same hold, or take the same end report, only the first counts it in
// albdrain_holds_total (which the replicas in this process share, so it is
// their sum) and puts an end event on the pod.
func TestOutcomeCountedOnceAcrossReplicas(t *testing.T) {
	reps := startReplicas(t, 2, cluster.ReplicaOptions{})
	ns := plainNamespace(t)
	// The pods are in no target group, so a hold ends at once
	// (not_registered); no helper runs in them to report anything itself.
	held, ended := keptTerminating(t, ns), keptTerminating(t, ns)
	before := holdTotals()
	for i := range reps.Len() {
		addr := reps.HoldBackend(i)
		req := contract.HoldRequest{Namespace: ns, Name: held.Name, UID: string(held.UID), TimeoutMillis: 30000}
		if code, body := askAt(t, addr, held.Status.PodIP, contract.HoldPath, req); code != http.StatusOK {
			t.Errorf("hold on replica %d: status %d (%q), want 200", i, code, body)
		}
		end := contract.HoldEnd{Namespace: ns, Name: ended.Name, UID: string(ended.UID), Outcome: contract.OutcomeQuiet,
			HeldMillis: 2000, QuietMillis: 1000, Signal: contract.SignalSockDiag, Quiet: true}
		if code, body := askAt(t, addr, ended.Status.PodIP, contract.HoldEndPath, end); code != http.StatusNoContent {
			t.Errorf("end report to replica %d: status %d (%q), want 204", i, code, body)
		}
	}
	// The events come before the count, or together with it: wait for one
	// on each pod, then for any second one the recorder may still write.
	ends := endEventsByPod(t, ns, 2)
	got := delta(holdTotals(), before)
	want := map[string]float64{string(contract.OutcomeNotRegistered): 1, string(contract.OutcomeQuiet): 1}
	if d := cmp.Diff(want, nonZero(got)); d != "" {
		t.Errorf("albdrain_holds_total summed over both replicas grew (-want +got):\n%s", d)
	}
	for _, p := range []*corev1.Pod{held, ended} {
		if n := ends[p.UID]; n != 1 {
			t.Errorf("pod %s has %d end events, want 1", p.Name, n)
		}
	}
}

// plainNamespace is a namespace albdrain's webhook leaves alone, deleted
// when the test ends.
func plainNamespace(t *testing.T) string {
	t.Helper()
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("plain-%d", oddSeq.Add(1))}}
	if err := shared.Env.Client.Create(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shared.Env.Client.Delete(context.Background(), n); client.IgnoreNotFound(err) != nil {
			t.Error(err)
		}
	})
	return n.Name
}

// keptTerminating creates a pod that the watcher counts as managed but that
// runs no helper, waits for its IP, and deletes it; a finalizer keeps it
// terminating until the test ends.
func keptTerminating(t *testing.T, ns string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "kept-", Namespace: ns, Labels: map[string]string{contract.ManagedLabel: "true"},
			Finalizers: []string{keepFinalizer}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{bare("app")}},
	}
	if err := shared.Env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { releaseFinalizer(t, p) })
	key := types.NamespacedName{Namespace: ns, Name: p.Name}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := shared.Env.Client.Get(ctx, key, p)
		return err == nil && p.Status.PodIP != "", err
	})
	if err != nil {
		t.Fatalf("pod %s never got an IP: %v", p.Name, err)
	}
	if err := shared.Env.Client.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// askAt sends body to the hold server at addr from the address from, as a
// pod's helper does, and returns the answer's status and body.
func askAt(t *testing.T, addr, from, path string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: servingCAs()},
	}}
	resp, err := c.Post("https://"+addr+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

// holdTotals reads albdrain_holds_total by outcome from the collectors the
// managers in this process share.
func holdTotals() map[string]float64 {
	m := app.InProcess().Metrics.Watcher
	out := map[string]float64{}
	for _, o := range contract.Outcomes {
		out[string(o)] = testutil.ToFloat64(m.Holds.WithLabelValues(string(o)))
	}
	return out
}

func nonZero(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// endEventsByPod waits until pods pods of ns have an event saying how
// their hold ended, and counts those events by pod UID.
func endEventsByPod(t *testing.T, ns string, pods int) map[types.UID]int {
	t.Helper()
	var by map[types.UID]int
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var list eventsv1.EventList
		if err := shared.Env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		by = map[types.UID]int{}
		for _, e := range list.Items {
			switch e.Reason {
			case contract.ReasonHoldReleased, contract.ReasonHoldBounded, contract.ReasonHoldTimedOut, contract.ReasonHoldFellBack:
				by[e.Regarding.UID]++
			}
		}
		return len(by) >= pods, nil
	})
	if err != nil {
		t.Fatalf("end events on %d pods of %s: %v (have %v)", pods, ns, err, by)
	}
	return by
}
