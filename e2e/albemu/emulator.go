package albemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Options configure an Emulator. The zero value is usable.
type Options struct {
	// APIAddr is the control-plane listen address; default "127.0.0.1:0".
	APIAddr string
	// Region and AccountID appear in ARNs; defaults "us-east-1" and
	// "123456789012".
	Region, AccountID string
	// PropagationLag is how long after RegisterTargets/DeregisterTargets the
	// data plane's routing set changes, the same on every node. Zero means
	// at once. A lag longer than the deregistration delay is allowed: the
	// target then reads "unused" while it still gets requests, as has been
	// seen in AWS. Lag, when set, replaces it.
	PropagationLag time.Duration
	// Lag, when set, is the distribution each node's lag is drawn from,
	// per registration or deregistration and per node.
	Lag *LagModel
	// Seed seeds the lag draws; the same seed and the same sequence of
	// calls give the same lags.
	Seed uint64
	// Nodes is how many ALB nodes there are, one per availability zone
	// (default 3). Each routes on its own view of the target group, with
	// its own lags, health checks and keep-alive connections to targets.
	Nodes int
	// HealthCheckDraining keeps health-checking targets while they drain,
	// until their deregistration delay ends. AWS does not document whether
	// it does, so both behaviours can be tested.
	HealthCheckDraining bool
	// ConnectTimeout bounds dialing a target (ALB: 10s, the default); when it
	// expires the client gets 504.
	ConnectTimeout time.Duration
	// IdleTimeout is how long a connection may carry no data before the ALB
	// gives up (ALB default 60s); a request to a silent target gets 504.
	IdleTimeout time.Duration
	// DefaultHealthCheck fills in the health-check settings a target group is
	// created without; its zero fields take AWS's defaults.
	DefaultHealthCheck HealthCheck
	// DefaultDeregistrationDelay is used for target groups created without
	// one; zero means AWS's 300s, Immediate means none.
	DefaultDeregistrationDelay time.Duration
	// MaxTargetsPerGroup caps registrations (TooManyTargets); default 1000.
	MaxTargetsPerGroup int
	// AllowNonLoopbackTargets lets RegisterTargets accept any IPv4 address,
	// for control-plane-only tests with pod-like IPs. Such targets are never
	// contacted: their health checks pass without traffic and requests routed
	// to them fail with 502.
	AllowNonLoopbackTargets bool
	// TargetSubnet is a private IPv4 subnet, at most a /8, that the test owns
	// besides loopback: a real node's pod addresses on a bridge the test
	// created. Its addresses are registered, health-checked and sent
	// traffic exactly like loopback ones; every other address stays refused.
	TargetSubnet netip.Prefix
	// VPC is what DescribeVpcs answers and RegisterTargets checks
	// availability zones against; default DefaultVPCID holding 10.0.0.0/8,
	// loopback and TargetSubnet.
	VPC *VPC
	// SecurityGroups are what DescribeSecurityGroups lists; default none.
	SecurityGroups []SecurityGroup
}

// Immediate is the deregistration delay for none at all: draining ends at
// once. It exists because a zero delay means "use the default".
const Immediate time.Duration = -1

const (
	defaultRegion          = "us-east-1"
	defaultAccountID       = "123456789012"
	defaultConnectTimeout  = 10 * time.Second
	defaultIdleTimeout     = 60 * time.Second
	defaultDeregDelay      = 300 * time.Second
	defaultMaxTargets      = 1000
	defaultListenAddr      = "127.0.0.1:0"
	defaultNodes           = 3
	maxDeregistrationDelay = 3600 * time.Second
)

func (o Options) withDefaults() Options {
	if o.APIAddr == "" {
		o.APIAddr = defaultListenAddr
	}
	if o.Region == "" {
		o.Region = defaultRegion
	}
	if o.AccountID == "" {
		o.AccountID = defaultAccountID
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = defaultConnectTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultIdleTimeout
	}
	if o.DefaultDeregistrationDelay == 0 {
		o.DefaultDeregistrationDelay = defaultDeregDelay
	}
	if o.Nodes <= 0 {
		o.Nodes = defaultNodes
	}
	if o.Lag == nil {
		lag := ConstantLag(o.PropagationLag)
		o.Lag = &lag
	}
	if o.VPC == nil {
		o.VPC = defaultVPC(o.TargetSubnet)
	}
	if o.MaxTargetsPerGroup <= 0 {
		o.MaxTargetsPerGroup = defaultMaxTargets
	}
	o.DefaultHealthCheck = o.DefaultHealthCheck.withDefaults(awsHealthCheckDefaults)
	return o
}

// Emulator is one emulated ELBv2 region: a control-plane API server plus any
// number of data-plane listeners. Its methods are safe for concurrent use.
type Emulator struct {
	opts Options

	apiListener net.Listener
	apiServer   *http.Server
	nodes       []*node

	// ctx ends on Close; every goroutine the emulator starts watches it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards everything below. One lock keeps the control plane, timers,
	// health checks and data plane consistent with each other; the emulator
	// is far from any throughput where that would matter.
	mu        sync.Mutex
	closed    bool
	changed   chan struct{} // closed and replaced on every state change
	lag       LagModel
	lagRand   *rand.Rand
	stops     []*Stop
	groups    map[string]*targetGroup // by ARN
	order     []*targetGroup          // creation order, for paging
	listeners map[io.Closer]struct{}  // ALB and NLB listeners
	calls     []Call
	requests  []RequestRecord
	faults    faultConfig
}

// New starts an emulator's API server.
func New(opts Options) (*Emulator, error) {
	opts = opts.withDefaults()
	if err := opts.DefaultHealthCheck.validate(); err != nil {
		return nil, fmt.Errorf("albemu: default health check: %w", err)
	}
	if p := opts.TargetSubnet; p.IsValid() && (!p.Addr().Is4() || !p.Addr().IsPrivate() || p.Bits() < 8 || p.Masked() != p) {
		return nil, fmt.Errorf("albemu: target subnet %s is not a private IPv4 subnet of at most /8", p)
	}
	ln, err := net.Listen("tcp", opts.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("albemu: listen API: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Emulator{
		opts:        opts,
		apiListener: ln,
		ctx:         ctx,
		cancel:      cancel,
		changed:     make(chan struct{}),
		lag:         *opts.Lag,
		lagRand:     newLagRand(opts.Seed),
		groups:      map[string]*targetGroup{},
		listeners:   map[io.Closer]struct{}{},
	}
	for i := range opts.Nodes {
		e.nodes = append(e.nodes, &node{index: i, zone: zoneName(opts.Region, i), transport: e.newTargetTransport(i), probes: e.newProbeClient(i)})
	}
	e.apiServer = &http.Server{Handler: http.HandlerFunc(e.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		_ = e.apiServer.Serve(ln) // returns when Close closes the server
	}()
	return e, nil
}

// NewForTest starts an emulator, fails tb if that fails, and closes it in
// tb.Cleanup.
func NewForTest(tb testing.TB, opts Options) *Emulator {
	tb.Helper()
	e, err := New(opts)
	if err != nil {
		tb.Fatalf("albemu: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// URL is the API endpoint, for the SDK's BaseEndpoint.
func (e *Emulator) URL() string { return "http://" + e.apiListener.Addr().String() }

// Close stops the API server, all listeners, timers and health checks. It is
// safe to call more than once.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	listeners := make([]io.Closer, 0, len(e.listeners))
	for l := range e.listeners {
		listeners = append(listeners, l)
	}
	e.mu.Unlock()

	e.cancel()
	err := e.apiServer.Close()
	for _, l := range listeners {
		err = errors.Join(err, l.Close())
	}
	e.wg.Wait()
	for _, n := range e.nodes {
		n.transport.CloseIdleConnections()
	}
	return err
}

// Wait blocks until cond returns true, re-evaluating it whenever the
// emulator's state changes (registrations, health results, lag and drain
// timers, requests, calls), or until ctx ends. cond runs without the
// emulator's lock, so it may call any Emulator method.
func (e *Emulator) Wait(ctx context.Context, cond func() bool) error {
	for {
		e.mu.Lock()
		changed := e.changed
		e.mu.Unlock()
		// Taking the channel before evaluating cond means a change racing
		// with the evaluation still wakes us.
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("albemu: wait: %w", context.Cause(ctx))
		}
	}
}

// notifyLocked wakes every Wait. Callers hold e.mu.
func (e *Emulator) notifyLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// afterLocked runs f under the lock once d has passed, unless the emulator
// is closed first. Callers hold e.mu, which keeps wg.Add ordered before
// Close's wg.Wait.
func (e *Emulator) afterLocked(d time.Duration, f func()) {
	if e.closed {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-e.ctx.Done():
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.closed {
			return
		}
		f()
		e.notifyLocked()
	}()
}

// goLocked starts a tracked goroutine. Callers hold e.mu.
func (e *Emulator) goLocked(f func()) {
	if e.closed {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}
