package peers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/internal/contract"
)

// maxRequestBytes bounds a request: maxTargets targets of under 100 bytes.
const maxRequestBytes = 128 << 10

// reviewTTL is how long an accepted token is trusted without a new
// TokenReview. Each replica polls every interval, so without it peers
// would send the apiserver a review per group per interval.
const reviewTTL = time.Minute

// Server is the poller that serves other replicas (elbv2.Poller).
type Server interface {
	Serve(ctx context.Context, reader, tgARN string, targets []elbv2.Target, after uint64) (elbv2.SharedPoll, error)
	Release(reader, tgARN string, targets []elbv2.Target)
}

// Handler serves other replicas' poll requests, for callers that present a
// token of albdrain's audience for this replica's own ServiceAccount.
type Handler struct {
	Poller Server
	// Reviews creates TokenReviews (as the hold endpoint does).
	Reviews client.Writer
	// TokenFile is this replica's own token, reviewed once to learn the
	// identity its peers share.
	TokenFile string
	// Wait bounds how long a request waits for the group's next poll.
	Wait time.Duration

	mu       sync.Mutex
	self     string
	accepted map[[sha256.Size]byte]time.Time
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	logger := log.FromContext(r.Context()).WithValues("remote", r.RemoteAddr)
	if status, err := h.authenticate(r.Context(), r); err != nil {
		logger.Info("peer poll refused", "err", err)
		http.Error(w, err.Error(), status)
		return
	}
	var req pollRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "malformed request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := req.validate(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	targets := make([]elbv2.Target, len(req.Targets))
	for i, t := range req.Targets {
		targets[i] = elbv2.Target{ID: t.ID, Port: t.Port}
	}
	if req.Release {
		h.Poller.Release(req.Reader, req.TargetGroupARN, targets)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.Wait)
	defer cancel()
	shared, err := h.Poller.Serve(ctx, req.Reader, req.TargetGroupARN, targets, req.After)
	if err != nil {
		// The reader polls for itself at once on any refusal.
		http.Error(w, "no poll of the group: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(toWire(shared))
}

func (req pollRequest) validate() error {
	if _, err := netip.ParseAddrPort(req.Reader); err != nil {
		return fmt.Errorf("reader %q is not a replica's address", req.Reader)
	}
	if !strings.HasPrefix(req.TargetGroupARN, "arn:") {
		return fmt.Errorf("targetGroupARN %q is not an ARN", req.TargetGroupARN)
	}
	if len(req.Targets) == 0 || len(req.Targets) > maxTargets {
		return fmt.Errorf("%d targets, want 1 to %d", len(req.Targets), maxTargets)
	}
	for _, t := range req.Targets {
		if t.ID == "" || t.Port <= 0 || t.Port > 65535 {
			return fmt.Errorf("bad target %q port %d", t.ID, t.Port)
		}
	}
	return nil
}

var errUnauthenticated = errors.New("a token of another albdrain replica is required")

// authenticate accepts a caller whose token the apiserver authenticates for
// albdrain's audience as this replica's own ServiceAccount.
func (h *Handler) authenticate(ctx context.Context, r *http.Request) (int, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	raw = strings.TrimSpace(raw)
	if !ok || raw == "" {
		return http.StatusUnauthorized, errUnauthenticated
	}
	key := sha256.Sum256([]byte(raw))
	now := time.Now()
	h.mu.Lock()
	if until, ok := h.accepted[key]; ok && now.Before(until) {
		h.mu.Unlock()
		return 0, nil
	}
	h.mu.Unlock()
	self, err := h.selfIdentity(ctx)
	if err != nil {
		return http.StatusServiceUnavailable, err
	}
	user, err := h.review(ctx, raw)
	if err != nil {
		return http.StatusServiceUnavailable, err
	}
	if user != self {
		return http.StatusForbidden, fmt.Errorf("%w (got %q)", errUnauthenticated, user)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.accepted == nil {
		h.accepted = map[[sha256.Size]byte]time.Time{}
	}
	for k, until := range h.accepted {
		if now.After(until) {
			delete(h.accepted, k)
		}
	}
	h.accepted[key] = now.Add(reviewTTL)
	return 0, nil
}

// selfIdentity is the user this replica's own token authenticates as.
func (h *Handler) selfIdentity(ctx context.Context) (string, error) {
	h.mu.Lock()
	self := h.self
	h.mu.Unlock()
	if self != "" {
		return self, nil
	}
	raw, err := os.ReadFile(h.TokenFile)
	if err != nil {
		return "", fmt.Errorf("own token: %w", err)
	}
	self, err = h.review(ctx, strings.TrimSpace(string(raw)))
	if err != nil {
		return "", fmt.Errorf("own token: %w", err)
	}
	if self == "" {
		return "", errors.New("own token: not accepted for albdrain's audience")
	}
	h.mu.Lock()
	h.self = self
	h.mu.Unlock()
	return self, nil
}

// review returns the user a token authenticates as for albdrain's
// audience, or "" when the apiserver does not accept it.
func (h *Handler) review(ctx context.Context, token string) (string, error) {
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{contract.TokenAudience}}}
	if err := h.Reviews.Create(ctx, tr); err != nil {
		return "", fmt.Errorf("token review: %w", err)
	}
	if !tr.Status.Authenticated || !slices.Contains(tr.Status.Audiences, contract.TokenAudience) {
		return "", nil
	}
	return tr.Status.User.Username, nil
}
