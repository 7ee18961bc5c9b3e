// Package endpoint is the watcher's HTTP endpoint for holds. The in-pod
// helper POSTs a hold for its own pod and the response comes back when the
// pod may stop. Every replica serves it (no leader election): a hold needs no
// state but the pod and ELBv2, so a dropped hold can be retried anywhere.
//
// A caller can hold, and learn about, only its own pod: the request's source
// IP must be one of the pod's IPs. Only a terminating pod may hold, and a
// pod has at most one hold per replica, which its concurrent requests join.
// Holds, requests per pod and request bodies are bounded so a misbehaving
// client cannot exhaust the watcher.
package endpoint

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/certs/tlspolicy"
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
	// Hold returns when pod may stop or requested has come; false means ctx
	// ended first and nothing was decided.
	Hold(ctx context.Context, pod *corev1.Pod, requested time.Time) (contract.HoldResponse, bool)
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
	// Holder runs the holds.
	Holder Holder
	// MaxConcurrent bounds holds in progress; more are answered 503.
	MaxConcurrent int
	// Log is the base of every hold's logger, which holds find in their
	// context; normally the manager's logger.
	Log logr.Logger
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
		http.Error(w, "bad hold request: "+err.Error(), status)
		return
	}
	requested := time.Now().Add(time.Duration(req.TimeoutMillis) * time.Millisecond)
	pod, logger, ok := s.callersPod(w, r, req.Namespace, req.Name, req.UID)
	if !ok {
		return
	}

	key := types.NamespacedName{Namespace: req.Namespace, Name: req.Name}
	if !s.terminating(r.Context(), key, pod) {
		logger.Info("refused hold: the pod is not terminating", "pod", key)
		http.Error(w, "the pod is not terminating", http.StatusConflict)
		return
	}

	f, res := s.join(log.IntoContext(r.Context(), logger), pod, requested)
	switch res {
	case tooManyForPod:
		http.Error(w, "too many requests for this pod's hold", http.StatusTooManyRequests)
		return
	case noSlot:
		http.Error(w, "too many holds in progress", http.StatusServiceUnavailable)
		return
	}
	select {
	case <-f.done:
	case <-r.Context().Done():
		s.leave(pod.UID, f)
		return // nobody reads an answer
	}
	resp, ok := f.resp, f.ok
	if !ok {
		// This replica is stopping, or the hold was abandoned by every
		// request just as this one joined.
		http.Error(w, "watcher stopping; retry", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		logger.Info("could not answer hold", "err", err)
	}
}

// callersPod reads the pod a request names and checks that the caller is
// that pod; if not, it answers the request and ok is false.
func (s *Server) callersPod(w http.ResponseWriter, r *http.Request, namespace, name, uid string) (pod *corev1.Pod, logger logr.Logger, ok bool) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	logger = log.FromContext(r.Context()).WithValues("remote", r.RemoteAddr)
	pod = &corev1.Pod{}
	err := s.opts.Pods.Get(r.Context(), key, pod)
	if err != nil && !apierrors.IsNotFound(err) {
		logger.Error(err, "reading pod", "pod", key)
		http.Error(w, "cannot read the pod", http.StatusServiceUnavailable)
		return nil, logger, false
	}
	// Unknown pods and other pods' callers get the same answer, so a caller
	// learns nothing about pods that are not its own.
	if err != nil || !fromPod(r.RemoteAddr, pod) {
		logger.Info("refused: no managed pod of that name has the caller's IP", "path", r.URL.Path, "pod", key, "found", err == nil)
		http.Error(w, "no managed pod of that name has the caller's IP", http.StatusForbidden)
		return nil, logger, false
	}
	if uid != "" && string(pod.UID) != uid {
		logger.Info("refused: pod UID differs", "path", r.URL.Path, "pod", key, "uid", uid)
		http.Error(w, "the pod of that name is a different pod", http.StatusConflict)
		return nil, logger, false
	}
	return pod, logger, true
}

// readRequest decodes and checks a hold request, or says which status
// refuses it.
func readRequest(w http.ResponseWriter, r *http.Request) (contract.HoldRequest, int, error) {
	var req contract.HoldRequest
	if status, err := readBody(w, r, &req); err != nil {
		return req, status, err
	}
	if req.Namespace == "" || req.Name == "" || req.TimeoutMillis <= 0 {
		return req, http.StatusBadRequest, errors.New("namespace, name and a positive timeoutMillis are required")
	}
	// Bounded before it becomes a deadline: a larger value would keep a hold
	// slot for longer than any hold can last, or overflow into the past.
	if req.TimeoutMillis > contract.MaxHoldTimeout.Milliseconds() {
		return req, http.StatusBadRequest, fmt.Errorf("timeoutMillis %d is above the longest hold, %d", req.TimeoutMillis, contract.MaxHoldTimeout.Milliseconds())
	}
	return req, 0, nil
}

// readBody decodes one JSON value of at most contract.MaxHoldRequestBytes,
// or says which status refuses it.
func readBody(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	// The body must arrive promptly; the deadline is lifted afterwards, since
	// a read deadline expiring during the hold would cancel its context.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	body := http.MaxBytesReader(w, r.Body, contract.MaxHoldRequestBytes)
	dec := json.NewDecoder(body)
	err := dec.Decode(v)
	if err == nil {
		// Reading to the end lets the server watch the connection, so a
		// helper that goes away cancels its hold. Anything but white space
		// after the request is refused rather than ignored.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the request")
			if _, ok := errors.AsType[*http.MaxBytesError](terr); ok {
				err = terr
			}
		}
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge, err
	}
	if err != nil {
		return http.StatusBadRequest, err
	}
	return 0, nil
}

// fromPod reports whether remoteAddr's IP is one of pod's IPs.
func fromPod(remoteAddr string, pod *corev1.Pod) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	caller := ap.Addr().Unmap()
	ips := pod.Status.PodIPs
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: pod.Status.PodIP}}
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip.IP); err == nil && a.Unmap() == caller {
			return true
		}
	}
	return false
}
