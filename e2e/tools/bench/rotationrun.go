package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/drain/helper"
	"github.com/albdrain/albdrain/drain/helper/traffic"
	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// rotationPod is one pod's termination in a rotation run.
type rotationPod struct {
	group, replica int
	// start is the deletion (and the preStop's start), asked when the
	// helper began (the deletion answered), answered when the watcher
	// answered the helper, end when the pod stopped serving.
	start, asked, answered, end time.Time
	// ended is the helper's log of its hold's end.
	ended   string
	outcome contract.Outcome
	stop    albemu.Stop
}

// rotationRun is what one rotation run measured.
type rotationRun struct {
	name             string
	pods             int
	share, protected bool
	requests, failed int
	// failedEvicted are the failed requests the ALB had routed to the
	// evicted pods (its request log).
	failedEvicted     int
	terminations      []rotationPod
	drainStart, ended time.Time
	// dth are the DescribeTargetHealth calls by replica during the drain.
	dth        [][]time.Time
	throttles  int
	cpu, hwm   []float64
	sharedRead []float64
}

// runSpec is one rotation run's shape.
type runSpec struct {
	name             string
	pods             int
	share, protected bool
	// during runs while the node drains (RotationOptions.DuringDrain).
	during func(context.Context) error
}

// rotationEnv is what every run of the measurement shares.
type rotationEnv struct {
	o      RotationOptions
	cl     client.Client
	m      *managerSetup
	caPEM  string
	source traffic.Source
	seq    int
}

// rotate runs one rotation: a fresh emulated ALB, the pods and their
// servers, three managers, traffic, and the drain.
func (e *rotationEnv) rotate(ctx context.Context, spec runSpec) (_ *rotationRun, err error) {
	o := e.o
	e.seq++
	lag := o.Lag
	emu, err := albemu.New(albemu.Options{
		Lag: &lag, Seed: o.Seed + uint64(e.seq), Nodes: o.Nodes,
		DefaultDeregistrationDelay: o.DeregistrationDelay,
		DefaultHealthCheck:         albemu.HealthCheck{Interval: 5 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 2},
	})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, emu.Close()) }()
	ns := fmt.Sprintf("bench-rotation-%d", e.seq)
	groups := min(o.TargetGroups, spec.pods)
	o.Progress("%s: %d pods over %d target groups in %s", spec.name, spec.pods, groups, ns)
	arns := make([]string, groups)
	listeners := make([]string, groups)
	objs := []client.Object{namespace(ns, map[string]string{contract.InjectKey: "enabled"})}
	for g := range groups {
		name := fmt.Sprintf("g-%d", g)
		if arns[g], err = emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: fmt.Sprintf("rot%d-%s", e.seq, name), Port: appPort}); err != nil {
			return nil, err
		}
		l, err := emu.AddListener(arns[g], "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners[g] = l.URL()
		objs = append(objs, service(ns, name), binding(ns, name, arns[g]))
	}
	if err := createAll(ctx, e.cl, objs[:1]); err != nil {
		return nil, err
	}
	if err := createAll(ctx, e.cl, objs[1:]); err != nil {
		return nil, err
	}
	pods := make([]*corev1.Pod, spec.pods)
	servers := make([]*http.Server, spec.pods)
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.Close()
			}
		}
	}()
	for i := range pods {
		pod := appPod(ns, fmt.Sprintf("p-%d", i), fmt.Sprintf("g-%d", i%groups), "bench-node")
		pod.Labels[contract.ManagedLabel] = "true"
		pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: corev1.PodConditionType(lbc.ReadinessGatePrefix + pod.Labels["app"])}}
		pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](120)
		pods[i] = pod
		ln, err := net.Listen("tcp", netip.AddrPortFrom(fleetIP(i), appPort).String())
		if err != nil {
			return nil, fmt.Errorf("pod %d's server: %w", i, err)
		}
		servers[i] = &http.Server{Handler: okHandler, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = servers[i].Serve(ln) }()
	}
	// Each group's successor already runs on the other node, as the
	// Deployment's surge pod would: the drained pods' traffic moves there.
	successors := make([]albemu.Target, groups)
	for g := range groups {
		ip := netip.AddrFrom4([4]byte{127, 251, byte(1 + g/250), byte(1 + g%250)})
		successors[g] = albemu.Target{ID: ip.String(), Port: appPort}
		ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, appPort).String())
		if err != nil {
			return nil, fmt.Errorf("group %d's successor: %w", g, err)
		}
		srv := &http.Server{Handler: okHandler, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(ln) }()
		if err := emu.RegisterTargets(arns[g], successors[g]); err != nil {
			return nil, err
		}
	}
	err = parallel(ctx, len(pods), func(ctx context.Context, i int) error {
		if err := e.cl.Create(ctx, pods[i]); err != nil {
			return err
		}
		pods[i].Status = runningStatus(pods[i], fleetIP(i))
		if err := e.cl.Status().Update(ctx, pods[i]); err != nil {
			return err
		}
		return emu.RegisterTargets(arns[i%groups], albemu.Target{ID: fleetIP(i).String(), Port: appPort})
	})
	if err != nil {
		return nil, err
	}
	o.Progress("%s: waiting for %d targets to pass their health checks", spec.name, len(pods))
	err = parallel(ctx, len(pods)+groups, func(ctx context.Context, i int) error {
		if i >= len(pods) {
			return emu.WaitTargetState(ctx, arns[i-len(pods)], successors[i-len(pods)], "healthy")
		}
		return emu.WaitTargetState(ctx, arns[i%groups], albemu.Target{ID: fleetIP(i).String(), Port: appPort}, "healthy")
	})
	if err != nil {
		return nil, err
	}
	var reps []*replica
	if spec.protected {
		o.Progress("%s: starting %d albdrain managers, --share-polls=%v", spec.name, o.Replicas, spec.share)
		if reps, err = startReplicas(ctx, e.m, e.cl, o.Replicas, spec.share, emu.URL(), fmt.Sprintf("rotation-%d", e.seq)); err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, stopReplicas(reps)) }()
		// Replicas in the field have run long before a drain: their
		// target-group caches are warm, as here before it starts.
		o.Progress("%s: waiting for each manager to warm its caches of %d target groups", spec.name, groups)
		if err := waitWarm(ctx, reps, groups); err != nil {
			return nil, err
		}
	}

	r := &rotationRun{name: spec.name, pods: spec.pods, share: spec.share, protected: spec.protected}
	tctx, stopTraffic := context.WithCancel(ctx)
	var sent, failed atomic.Int64
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		poisson(tctx, o.Rate, o.Seed+uint64(e.seq), listeners, &sent, &failed)
	}()
	defer func() {
		stopTraffic()
		<-trafficDone
	}()
	// The helpers size their quiet periods from the traffic before the hold.
	if !sleepUntil(ctx, time.Now().Add(5*time.Second)) {
		return nil, ctx.Err()
	}
	for _, rep := range reps {
		if rep.cpuStart, _, err = rep.usage(); err != nil {
			return nil, err
		}
	}
	o.Progress("%s: draining the node: %d pods evicted over %s", spec.name, len(pods), o.Spread)
	r.terminations = make([]rotationPod, len(pods))
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	var duringErr error
	if spec.during != nil {
		wg.Go(func() { duringErr = spec.during(ctx) })
	}
	// The Deployments' replacements are created as their pods are evicted,
	// as a rotation's are, through the same apiserver and into the same
	// managers' caches.
	replacements := make([]*corev1.Pod, len(pods))
	defer func() {
		for _, p := range replacements {
			if p != nil {
				err = errors.Join(err, client.IgnoreNotFound(e.cl.Delete(context.WithoutCancel(ctx), p, client.GracePeriodSeconds(0))))
			}
		}
	}()
	r.drainStart = time.Now()
	for i := range pods {
		if !sleepUntil(ctx, r.drainStart.Add(time.Duration(i)*o.Spread/time.Duration(len(pods)))) {
			return nil, ctx.Err()
		}
		wg.Go(func() {
			t := &r.terminations[i]
			t.group = i % groups
			var holdURL string
			if spec.protected {
				t.replica = serviceBackend(i, len(reps))
				holdURL = reps[t.replica].holdURL
			}
			errs[i] = e.terminate(ctx, emu, pods[i], servers[i], fleetIP(i), arns[t.group], holdURL, t)
		})
		rp := replacement(pods[i])
		if err := e.cl.Create(ctx, rp); err != nil {
			return nil, fmt.Errorf("replacement of pod %d: %w", i, err)
		}
		replacements[i] = rp
	}
	wg.Wait()
	if err := errors.Join(append(errs, duringErr)...); err != nil {
		return nil, err
	}
	r.ended = time.Now()
	// Requests the ALB still routes to a stopped pod fail: the run lasts
	// until every node has stopped routing to every target.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = emu.Wait(wctx, func() bool {
		return !slices.ContainsFunc(emu.Stops(), func(s albemu.Stop) bool { return !s.Complete() })
	})
	if err != nil {
		return nil, fmt.Errorf("%s: the ALB nodes did not all stop routing: %w", spec.name, err)
	}
	stopTraffic()
	<-trafficDone
	r.requests, r.failed = int(sent.Load()), int(failed.Load())
	evicted := map[string]bool{}
	for i := range pods {
		evicted[netip.AddrPortFrom(fleetIP(i), appPort).String()] = true
	}
	var lost []albemu.RequestRecord
	podOf := map[string]int{}
	for i := range pods {
		podOf[netip.AddrPortFrom(fleetIP(i), appPort).String()] = i
	}
	for _, req := range emu.Requests() {
		if evicted[req.Target] && req.Status != 460 && (req.Status >= 500 || req.Err != "") {
			r.failedEvicted++
			// With no hold every evicted pod loses requests: name only
			// what a hold let through.
			if spec.protected && r.failedEvicted <= 20 {
				lost = append(lost, req)
			}
		}
	}
	for i := range r.terminations {
		t := &r.terminations[i]
		stop, ok := emu.TargetStop(arns[t.group], albemu.Target{ID: fleetIP(i).String(), Port: appPort})
		if !ok {
			return nil, fmt.Errorf("%s: no ground truth for pod %d's target", spec.name, i)
		}
		t.stop = stop
	}
	for _, req := range lost {
		i := podOf[req.Target]
		t := r.terminations[i]
		o.Progress("%s: failed request to pod %d from node %d, %v after its deletion, %v after its release (%s, status %d %s); node lags %v; helper:%s",
			spec.name, i, req.Node, req.Time.Sub(t.start).Round(time.Millisecond), req.Time.Sub(t.end).Round(time.Millisecond),
			t.outcome, req.Status, req.Err, t.stop.Lags, t.ended)
	}
	r.dth = make([][]time.Time, len(reps))
	for _, c := range emu.Calls() {
		if strings.Contains(c.ErrorCode, "Throttl") {
			r.throttles++
		}
		if c.Action != "DescribeTargetHealth" || c.Time.Before(r.drainStart) || c.Time.After(r.ended) {
			continue
		}
		for k := range reps {
			if strings.Contains(c.UserAgent, "app/"+replicaAppID(k)) {
				r.dth[k] = append(r.dth[k], c.Time)
			}
		}
	}
	for _, rep := range reps {
		cpu, hwm, err := rep.usage()
		if err != nil {
			return nil, err
		}
		read, _ := rep.metric(ctx, `albdrain_shared_polls_total{result="read"}`)
		r.cpu, r.hwm, r.sharedRead = append(r.cpu, cpu-rep.cpuStart), append(r.hwm, hwm), append(r.sharedRead, read)
	}
	o.Progress("%s: %d of %d requests failed, %d of them routed to evicted pods", spec.name, r.failed, r.requests, r.failedEvicted)
	return r, nil
}

// okHandler is every pod's application.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })

// serviceBackend is the replica the hold Service sends pod i's helper to:
// kube-proxy spreads connections evenly, here in turn.
func serviceBackend(i, replicas int) int { return i % replicas }

// terminate plays one pod's eviction: the deletion, the load balancer
// controller deregistering its target after LBCLag, the preStop hold by
// albdrain's helper in this process (none when holdURL is empty: the app
// stops at once), then the app's exit and the pod's removal.
func (e *rotationEnv) terminate(ctx context.Context, emu *albemu.Emulator, pod *corev1.Pod, srv *http.Server, ip netip.Addr, arn, holdURL string, t *rotationPod) error {
	t.start = time.Now()
	if err := e.cl.Delete(ctx, pod); err != nil {
		return fmt.Errorf("delete pod %s: %w", pod.Name, err)
	}
	dereg := make(chan error, 1)
	go func() {
		sleepUntil(ctx, t.start.Add(e.o.LBCLag))
		dereg <- emu.DeregisterTargets(arn, albemu.Target{ID: ip.String(), Port: appPort})
	}()
	if holdURL != "" {
		log := &answerLog{}
		t.asked = time.Now()
		end, _ := helper.Run(ctx, helperSpec(), helper.Env{
			PodName: pod.Name, PodNamespace: pod.Namespace, PodUID: string(pod.UID), PodIP: ip,
			WatcherURL: holdURL, WatcherCA: e.caPEM,
		}, helper.Options{Source: e.source, Log: slog.New(log), SampleInterval: 500 * time.Millisecond})
		t.outcome, t.answered = end.Outcome, log.at()
		log.mu.Lock()
		t.ended = log.ended
		log.mu.Unlock()
	}
	t.end = time.Now()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-dereg; err != nil {
		return fmt.Errorf("deregister pod %s: %w", pod.Name, err)
	}
	return e.cl.Delete(ctx, pod, client.GracePeriodSeconds(0))
}

// helperSpec is the hold the chart's defaults inject.
func helperSpec() contract.Spec {
	return contract.Spec{
		Mode: contract.ModeWait, MaxHold: 90 * time.Second, Fallback: 30 * time.Second,
		QuietPeriod: time.Second, QuietGaps: 15, QuietPeriodMax: 30 * time.Second,
		Ports: []int32{appPort}, Budget: 30 * time.Second,
	}
}

// answerLog is the helper's log, of which it keeps when the watcher
// answered: the moment the helper learned its target was draining.
type answerLog struct {
	mu       sync.Mutex
	answered time.Time
	// ended is the helper's account of its hold's end: its outcome and
	// what it judged of each load-balancer address.
	ended string
}

func (l *answerLog) at() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answered
}

// Enabled implements slog.Handler.
func (l *answerLog) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler.
func (l *answerLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r.Message {
	case "watcher answered":
		l.answered = r.Time
	case "hold ended", "hold ended without a quiet period":
		var b strings.Builder
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		l.ended = b.String()
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (l *answerLog) WithAttrs([]slog.Attr) slog.Handler { return l }

// WithGroup implements slog.Handler.
func (l *answerLog) WithGroup(string) slog.Handler { return l }

// poisson sends requests at rate per second as a Poisson process, each to
// a listener picked at random, until ctx ends, counting those sent and
// those that failed (5xx or no answer).
func poisson(ctx context.Context, rate float64, seed uint64, listeners []string, sent, failed *atomic.Int64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer hc.CloseIdleConnections()
	var wg sync.WaitGroup
	defer wg.Wait()
	next := time.Now()
	for {
		next = next.Add(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
		if !sleepUntil(ctx, next) {
			return
		}
		url := listeners[rng.IntN(len(listeners))]
		sent.Add(1)
		wg.Go(func() {
			resp, err := hc.Get(url)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode >= 500 {
				failed.Add(1)
			}
		})
	}
}

// cachedSource shares one reading of the socket table among the helpers
// in this process, which all see the same table: each helper reading it
// on its own would spend the machine on it hundreds of times a second.
type cachedSource struct {
	src   traffic.Source
	every time.Duration
	mu    sync.Mutex
	at    time.Time
	socks []traffic.Socket
	err   error
}

// Signal implements traffic.Source.
func (c *cachedSource) Signal() string { return c.src.Signal() }

// Sockets implements traffic.Source.
func (c *cachedSource) Sockets() ([]traffic.Socket, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) >= c.every {
		c.socks, c.err = c.src.Sockets()
		c.at = time.Now()
	}
	return slices.Clone(c.socks), c.err
}

// newRotationEnv prepares what the runs share: the chart's manager setup
// and the helpers' trust of its certificate and socket source.
func newRotationEnv(ctx context.Context, o RotationOptions, m *managerSetup, cl client.Client) (*rotationEnv, error) {
	ca, err := os.ReadFile(filepath.Join(m.certDir, "tls.crt"))
	if err != nil {
		return nil, err
	}
	// The helpers' ports differ, and one reading serves them all: the
	// whole table.
	src, sdErr, procErr := traffic.Open("/proc", traffic.Filter{})
	if src == nil {
		return nil, fmt.Errorf("no socket table for the helpers: sock_diag: %v; /proc: %v", sdErr, procErr)
	}
	return &rotationEnv{o: o, cl: cl, m: m, caPEM: string(ca), source: &cachedSource{src: src, every: 250 * time.Millisecond}}, ctx.Err()
}

// label is a run's name with its scale, for the table.
func (r *rotationRun) label() string { return r.name + "@" + strconv.Itoa(r.pods) }

// waitWarm waits until every replica has cached the delay and settings of
// all groups target groups, as its albdrain_target_groups_warm shows.
func waitWarm(ctx context.Context, reps []*replica, groups int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, rep := range reps {
		for {
			n, err := rep.metric(ctx, "albdrain_target_groups_warm")
			if err == nil && int(n) >= groups {
				break
			}
			if !sleepUntil(ctx, time.Now().Add(time.Second)) {
				return fmt.Errorf("replica's caches not warm (%v warm of %d groups, %v): %w", n, groups, err, ctx.Err())
			}
		}
	}
	return nil
}

// replacement is the pod a Deployment creates on another node for an
// evicted one: managed and gated like it, not yet running.
func replacement(evicted *corev1.Pod) *corev1.Pod {
	p := appPod(evicted.Namespace, "r-"+evicted.Name, evicted.Labels["app"], "bench-node-b")
	p.Labels[contract.ManagedLabel] = "true"
	p.Spec.ReadinessGates = evicted.Spec.ReadinessGates
	p.Spec.TerminationGracePeriodSeconds = evicted.Spec.TerminationGracePeriodSeconds
	return p
}
