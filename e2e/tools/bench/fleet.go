package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// fleetNamespace holds the budget measurement's pods.
const fleetNamespace = "bench-budget"

// fleet is the budget measurement's pods: running, ready, registered as
// targets, and marked managed as albdrain's webhook would have.
type fleet struct {
	cl   client.Client
	emu  *albemu.Emulator
	pods []*corev1.Pod
	// arns[i] is pods[i]'s target group.
	arns []string
}

// fleetIP is pod i's loopback address, in a block of its own so the
// measurement meets no other harness on the machine.
func fleetIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 250, byte(1 + i/250), byte(1 + i%250)})
}

func newFleet(ctx context.Context, env *kubetest.Env, emu *albemu.Emulator, o BudgetOptions) (*fleet, error) {
	cl, err := unthrottledClient(env.Config)
	if err != nil {
		return nil, err
	}
	f := &fleet{cl: cl, emu: emu}
	o.Progress("creating %d target groups, their Services and TargetGroupBindings, and %d pods", o.TargetGroups, o.Pods)
	groups := make([]string, o.TargetGroups)
	objs := []client.Object{namespace(fleetNamespace, map[string]string{contract.InjectKey: "enabled"})}
	for g := range groups {
		name := fmt.Sprintf("g-%d", g)
		if groups[g], err = emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "bench-" + name, Port: appPort}); err != nil {
			return nil, err
		}
		objs = append(objs, service(fleetNamespace, name), binding(fleetNamespace, name, groups[g]))
	}
	if err := createAll(ctx, cl, objs[:1]); err != nil {
		return nil, err
	}
	for i := range o.Pods {
		g := i % o.TargetGroups
		pod := appPod(fleetNamespace, fmt.Sprintf("p-%d", i), fmt.Sprintf("g-%d", g), "bench-node")
		pod.Labels[contract.ManagedLabel] = "true"
		pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: corev1.PodConditionType(lbc.ReadinessGatePrefix + pod.Labels["app"])}}
		// Long enough that the hold, not the grace period, ends each wait.
		pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](600)
		f.pods = append(f.pods, pod)
		f.arns = append(f.arns, groups[g])
		objs = append(objs, pod)
	}
	if err := createAll(ctx, cl, objs[1:]); err != nil {
		return nil, err
	}
	err = parallel(ctx, len(f.pods), func(ctx context.Context, i int) error {
		pod := f.pods[i]
		pod.Status = runningStatus(pod, fleetIP(i))
		if err := cl.Status().Update(ctx, pod); err != nil {
			return fmt.Errorf("pod %s status: %w", pod.Name, err)
		}
		return emu.RegisterTargets(f.arns[i], albemu.Target{ID: fleetIP(i).String(), Port: appPort})
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// holdRun is one pod's termination.
type holdRun struct {
	start, deregistered, end time.Time
	outcome                  contract.Outcome
	err                      error
}

// terminateAll terminates every pod, starting them evenly over o.Spread,
// and waits for every hold to end. It returns the runs and the most holds
// in progress at once.
func (f *fleet) terminateAll(ctx context.Context, holdURL string, o BudgetOptions) ([]holdRun, int) {
	runs := make([]holdRun, len(f.pods))
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range f.pods {
		if !sleepUntil(ctx, start.Add(time.Duration(i)*o.Spread/time.Duration(len(f.pods)))) {
			runs[i].err = ctx.Err()
			continue
		}
		wg.Go(func() {
			n := held.Add(1)
			defer held.Add(-1)
			for p := peak.Load(); n > p; p = peak.Load() {
				if peak.CompareAndSwap(p, n) {
					break
				}
			}
			runs[i] = f.terminate(ctx, i, holdURL, o.LBCLag)
		})
	}
	wg.Wait()
	return runs, int(peak.Load())
}

// terminate plays one pod's termination: the deletion, the load balancer
// controller deregistering its target after lag, the in-pod helper's hold
// request, and the kubelet removing the pod once the hold ended.
func (f *fleet) terminate(ctx context.Context, i int, holdURL string, lag time.Duration) holdRun {
	pod := f.pods[i]
	r := holdRun{start: time.Now()}
	if err := f.cl.Delete(ctx, pod); err != nil {
		r.err = fmt.Errorf("delete pod %s: %w", pod.Name, err)
		return r
	}
	dereg := make(chan error, 1)
	go func() {
		sleepUntil(ctx, r.start.Add(lag))
		r.deregistered = time.Now()
		dereg <- f.emu.DeregisterTargets(f.arns[i], albemu.Target{ID: fleetIP(i).String(), Port: appPort})
	}()
	resp, err := askHold(ctx, holdURL, fleetIP(i), pod)
	r.end, r.outcome = time.Now(), resp.Outcome
	if derr := <-dereg; derr != nil && err == nil {
		err = fmt.Errorf("deregister: %w", derr)
	}
	if err == nil {
		err = f.cl.Delete(ctx, pod, client.GracePeriodSeconds(0))
	}
	if err != nil {
		r.err = fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	return r
}

// askHold is the in-pod helper's request: from the pod's IP, one
// connection, answered when the pod may stop.
func askHold(ctx context.Context, url string, from netip.Addr, pod *corev1.Pod) (contract.HoldResponse, error) {
	var resp contract.HoldResponse
	const maxHold = 5 * time.Minute
	body, err := json.Marshal(contract.HoldRequest{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID), TimeoutMillis: maxHold.Milliseconds()})
	if err != nil {
		return resp, err
	}
	ctx, cancel := context.WithTimeout(ctx, maxHold+time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+contract.HoldPath, bytes.NewReader(body))
	if err != nil {
		return resp, err
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
	defer hc.CloseIdleConnections()
	hresp, err := hc.Do(req)
	if err != nil {
		return resp, fmt.Errorf("hold: %w", err)
	}
	defer hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK {
		return resp, fmt.Errorf("hold: %s", hresp.Status)
	}
	if err := json.NewDecoder(hresp.Body).Decode(&resp); err != nil {
		return resp, fmt.Errorf("hold answer: %w", err)
	}
	return resp, nil
}

// sleepUntil waits for t or ctx's end, and reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
