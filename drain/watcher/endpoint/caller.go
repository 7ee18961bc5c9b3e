package endpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/internal/contract"
)

// callersPod reads the pod a request names and checks that the caller is
// that pod: its source IP is one of the pod's IPs and, for a pod the webhook
// gave a token, it presents that token (see Tokens); if not, it answers the
// request and ok is false.
func (s *Server) callersPod(w http.ResponseWriter, r *http.Request, namespace, name, uid string) (pod *corev1.Pod, logger logr.Logger, ok bool) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	logger = log.FromContext(r.Context()).WithValues("remote", r.RemoteAddr)
	pod = &corev1.Pod{}
	err := s.opts.Pods.Get(r.Context(), key, pod)
	if err != nil && !apierrors.IsNotFound(err) {
		logger.Error(err, "reading pod", "pod", key)
		s.refuse(w, contract.RefusedPodUnreadable, "cannot read the pod", http.StatusServiceUnavailable)
		return nil, logger, false
	}
	// Unknown pods and other pods' callers get the same answer, so a caller
	// learns nothing about pods that are not its own.
	if err != nil || !fromPod(r.RemoteAddr, pod) {
		logger.Info("refused: no managed pod of that name has the caller's IP", "path", r.URL.Path, "pod", key, "found", err == nil)
		s.refuse(w, contract.RefusedWrongSource, "no managed pod of that name has the caller's IP", http.StatusForbidden)
		return nil, logger, false
	}
	if uid != "" && string(pod.UID) != uid {
		logger.Info("refused: pod UID differs", "path", r.URL.Path, "pod", key, "uid", uid)
		s.refuse(w, contract.RefusedWrongUID, "the pod of that name is a different pod", http.StatusConflict)
		return nil, logger, false
	}
	// The token is checked after the source IP, so only callers at a pod's
	// address can make the watcher send TokenReviews.
	if err := s.opts.Tokens.checkToken(r.Context(), r, pod); err != nil {
		reason, status := tokenRefusal(err)
		logger.Info("refused: pod token", "path", r.URL.Path, "pod", key, "reason", reason, "err", err)
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="albdrain"`)
		}
		s.refuse(w, reason, err.Error(), status)
		return nil, logger, false
	}
	return pod, logger, true
}

// tokenRefusal is the reason and status that answer a checkToken error.
func tokenRefusal(err error) (reason string, status int) {
	switch {
	case errors.Is(err, errNoToken):
		return contract.RefusedNoToken, http.StatusUnauthorized
	case errors.Is(err, errTokenRefused):
		return contract.RefusedBadToken, http.StatusUnauthorized
	case errors.Is(err, errNotThePod):
		return contract.RefusedWrongPod, http.StatusForbidden
	}
	// The apiserver could not answer: another attempt may pass.
	return contract.RefusedReviewFailed, http.StatusServiceUnavailable
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
