// Package endpoint is the watcher's HTTP endpoint for holds. The in-pod
// helper POSTs a hold for its own pod and the response comes back when the
// pod may stop. Every replica serves it (no leader election): a hold needs no
// state but the pod and ELBv2, so a dropped hold can be retried anywhere.
//
// A caller can hold, and learn about, only its own pod: the request's source
// IP must be one of the pod's IPs and, for pods the webhook gave a token, the
// request must carry that pod's ServiceAccount token, which the apiserver
// verifies (a TokenReview) as bound to that very pod. Only a pod going away
// (deleted, or evicted or shut down by its kubelet) may hold, and a
// pod has at most one hold per replica, which its concurrent requests join.
// Holds, requests per pod and request bodies are bounded so a misbehaving
// client cannot exhaust the watcher. Every refusal is logged and counted by
// reason (contract.RefusalReasons).
package endpoint

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/certs/tlspolicy"
	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/internal/contract"
)

// bodyTimeout bounds reading a hold request, so a client sending slowly
// cannot keep a connection and its handler for long.
const bodyTimeout = 10 * time.Second

// maxHeaderBytes bounds a request's headers: the helper sends a few hundred
// bytes, and net/http's default (1 MiB) per connection would let any caller
// make the watcher hold a lot of memory.
const maxHeaderBytes = 16 << 10

// Holder decides when a pod may stop.
type Holder interface {
	// Hold returns when the watcher's part of pod's hold is over (a final
	// outcome, or a hand-off to the helper) or requested has come, leaving
	// the application budget before the pod's grace period ends; false
	// means ctx ended first and nothing was decided.
	Hold(ctx context.Context, pod *corev1.Pod, requested time.Time, budget time.Duration) (contract.Answer, bool)
	// End records the helper's report of how a hold ended.
	End(ctx context.Context, pod *corev1.Pod, end contract.HoldEnd)
}

// Options configure a Server.
type Options struct {
	// Addr is the listen address, e.g. ":9443".
	Addr string
	// CertDir holds tls.crt and tls.key; empty serves plain HTTP. The files
	// are reloaded when they change, as cert-manager rotates them.
	CertDir string
	// Pods reads pods, normally from the manager's cache of managed pods.
	Pods client.Reader
	// LivePods, when set, reads pods from the apiserver: a hold is refused
	// as not terminating only once the apiserver agrees, however far this
	// replica's cache lags.
	LivePods client.Reader
	// Holder runs the holds.
	Holder Holder
	// Tokens verifies the pods' tokens.
	Tokens Tokens
	// Metrics counts refused requests; required.
	Metrics *metrics.Metrics
	// MaxConcurrent bounds holds in progress; more are answered 503.
	MaxConcurrent int
	// Log is the base of every hold's logger, which holds find in their
	// context; normally the manager's logger.
	Log logr.Logger
	// Also serves other paths on the same port: the replicas' shared
	// polling (package peers), which needs the hold port's TLS and reach.
	Also map[string]http.Handler
}

// Server serves holds. It is a controller-runtime Runnable.
type Server struct {
	opts      Options
	slots     chan struct{}
	stopping  context.Context
	listening atomic.Bool

	mu      sync.Mutex
	flights map[types.UID]*flight
}

// New returns a Server; Start runs it.
func New(opts Options) *Server {
	return &Server{opts: opts, slots: make(chan struct{}, opts.MaxConcurrent), stopping: context.Background(), flights: map[types.UID]*flight{}}
}

// NeedLeaderElection is false: every replica serves holds.
func (s *Server) NeedLeaderElection() bool { return false }

// ReadyCheck fails until the server listens, for the manager's readyz.
func (s *Server) ReadyCheck(*http.Request) error {
	if !s.listening.Load() {
		return errors.New("hold server not listening")
	}
	return nil
}

// Start listens and serves until ctx ends. Holds in progress are then
// answered 503, so helpers retry against another replica at once.
func (s *Server) Start(ctx context.Context) error {
	logger := s.opts.Log.WithName("hold-server")
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("hold server: %w", err)
	}
	if s.opts.CertDir != "" {
		cw, err := certwatcher.New(filepath.Join(s.opts.CertDir, "tls.crt"), filepath.Join(s.opts.CertDir, "tls.key"))
		if err != nil {
			ln.Close()
			return fmt.Errorf("hold server certificate: %w", err)
		}
		go func() {
			if err := cw.Start(ctx); err != nil {
				logger.Error(err, "certificate watcher stopped")
			}
		}()
		cfg := &tls.Config{GetCertificate: cw.GetCertificate}
		tlspolicy.Apply(cfg)
		ln = tls.NewListener(ln, cfg)
	}
	s.stopping = ctx
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		// No write timeout: a response is written when the hold ends.
		BaseContext: func(net.Listener) context.Context { return log.IntoContext(context.WithoutCancel(ctx), logger) },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	s.listening.Store(true)
	logger.Info("serving holds", "addr", ln.Addr().String(), "tls", s.opts.CertDir != "")
	select {
	case err := <-done:
		s.listening.Store(false)
		return fmt.Errorf("hold server: %w", err)
	case <-ctx.Done():
	}
	s.listening.Store(false)
	// Holds see ctx end and answer 503 at once; the timeout covers a client
	// that stopped reading.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	return nil
}

// ServeHTTP handles one hold, or the report of its end.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := s.opts.Also[r.URL.Path]; ok {
		h.ServeHTTP(w, r)
		return
	}
	if r.URL.Path != contract.HoldPath && r.URL.Path != contract.HoldEndPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == contract.HoldEndPath {
		s.serveEnd(w, r)
		return
	}
	// The request is read and checked before a hold slot is taken: any
	// caller can open a connection and trickle a body, but only a pod's own
	// hold may occupy one of the bounded slots.
	req, status, err := readRequest(w, r)
	if err != nil {
		s.refuse(w, contract.RefusedBadRequest, "bad hold request: "+err.Error(), status)
		return
	}
	requested := time.Now().Add(time.Duration(req.TimeoutMillis) * time.Millisecond)
	pod, logger, ok := s.callersPod(w, r, req.Namespace, req.Name, req.UID)
	if !ok {
		return
	}

	key := types.NamespacedName{Namespace: req.Namespace, Name: req.Name}
	if !s.terminating(r.Context(), key, pod) {
		// The helper releases at once on 409 (contract.OutcomeNotTerminating).
		logger.Info("refused hold: the pod is not going away", "pod", key)
		s.refuse(w, contract.RefusedNotTerminating, contract.NotTerminatingMessage, http.StatusConflict)
		return
	}

	budget := time.Duration(req.BudgetMillis) * time.Millisecond
	f, res := s.join(log.IntoContext(r.Context(), logger), pod, requested, budget)
	switch res {
	case tooManyForPod:
		s.refuse(w, contract.RefusedPodLimit, "too many requests for this pod's hold", http.StatusTooManyRequests)
		return
	case noSlot:
		s.refuse(w, contract.RefusedCapacity, "too many holds in progress", http.StatusServiceUnavailable)
		return
	}
	select {
	case <-f.done:
	case <-r.Context().Done():
		s.leave(pod.UID, f)
		return // nobody reads an answer
	}
	a, ok := f.answer, f.ok
	if !ok {
		// This replica is stopping, or the hold was abandoned by every
		// request just as this one joined.
		http.Error(w, "watcher stopping; retry", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(a); err != nil {
		logger.Info("could not answer hold", "err", err)
	}
}

// refuse answers a hold request or end report with an error and counts it
// by reason, one of contract.RefusalReasons.
func (s *Server) refuse(w http.ResponseWriter, reason, msg string, status int) {
	s.opts.Metrics.HoldRefusals.WithLabelValues(reason).Inc()
	http.Error(w, msg, status)
}
