// Package serve is the manager's side of explain: it answers, for one pod,
// whether albdrain protects it and why not: what the webhook recorded, the
// load balancer backends the shared lbc.Finder matches now, the webhook's own
// decision for the pod now (eligibility), and the target groups the watcher
// would hold it on. The manager serves it on its webhook server, for the
// kubectl albdrain plugin (package explain) through the apiserver's service
// proxy.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/eligibility"
	"github.com/albdrain/albdrain/internal/explain"
	"github.com/albdrain/albdrain/internal/lbc"
)

// Handler serves explanations, only to a caller whose bearer token (in
// TokenHeader) may get the pod, and at most Limit's rate for all callers
// together. A caller must also name the pod's UID.
type Handler struct {
	// Pods reads pods from the apiserver: the manager's cache holds managed pods only.
	Pods   client.Reader
	Finder *lbc.Finder
	// Resolver is the watcher's: where it would look for the pod's targets.
	Resolver Resolver
	// Auth decides who may ask; Limit bounds how often, before any
	// apiserver call.
	Auth  Authorizer
	Limit *rate.Limiter
}

// Resolver finds the target groups a pod is registered in, as the watcher
// does when it holds the pod (its targetgroups resolver).
type Resolver interface {
	Registrations(ctx context.Context, pod *corev1.Pod) ([]lbc.Registration, error)
}

// ServeHTTP implements http.Handler: GET Path?namespace=&name=&uid=.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	if !h.Limit.Allow() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many explain requests; try again", http.StatusTooManyRequests)
		return
	}
	q := r.URL.Query()
	ns, name, uid := q.Get("namespace"), q.Get("name"), q.Get("uid")
	if ns == "" || name == "" || uid == "" {
		http.Error(w, "namespace, name and uid are required", http.StatusBadRequest)
		return
	}
	token := bearer(r)
	if token == "" {
		http.Error(w, "send your bearer token in "+explain.TokenHeader+" (kubectl albdrain does, from a kubeconfig with a token or exec credentials)", http.StatusUnauthorized)
		return
	}
	switch err := h.Auth.MayGetPod(r.Context(), token, ns, name); {
	case errors.Is(err, errUnauthenticated):
		http.Error(w, "the token in "+explain.TokenHeader+" is not valid", http.StatusUnauthorized)
		return
	case errors.Is(err, errForbidden):
		http.Error(w, "you may not get this pod", http.StatusForbidden)
		return
	case err != nil:
		logf.FromContext(r.Context()).Error(err, "authorizing an explain request")
		http.Error(w, "cannot check your access now", http.StatusServiceUnavailable)
		return
	}
	var pod corev1.Pod
	err := h.Pods.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, &pod)
	if err != nil || pod.UID != types.UID(uid) {
		// The same answer for a missing pod and a wrong UID: nothing learnt.
		http.Error(w, "no such pod", http.StatusNotFound)
		return
	}
	ex, err := h.Explain(r.Context(), &pod)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ex)
}

// Explain explains one pod.
func (h *Handler) Explain(ctx context.Context, pod *corev1.Pod) (explain.Explanation, error) {
	ex := explain.Explanation{Namespace: pod.Namespace, Name: pod.Name, ServedAPIs: []string{}}
	for _, a := range h.Finder.Served.List() {
		ex.ServedAPIs = append(ex.ServedAPIs, string(a))
	}
	// One lookup, shown and decided on: the decision may stop before its own
	// lookup, and the backends are shown all the same.
	m, err := h.Finder.Find(ctx, pod.Namespace, pod)
	if err != nil {
		return ex, fmt.Errorf("find backends: %w", err)
	}
	for _, b := range m.Backends {
		ex.Backends = append(ex.Backends, explain.Backend{Service: b.Service, TargetPort: b.TargetPort.String(), LoadBalancer: string(b.Kind),
			TargetGroupBinding: b.TargetGroupBinding, Ingress: b.Ingress, Route: b.Route, Gateway: b.Gateway})
	}
	ex.Skipped = m.Skipped
	ex.Record = contract.ParseRecord(pod.Annotations)
	dec := eligibility.Rules{Finder: found(m)}.Decide(ctx, pod.Namespace, pod)
	ex.Reason = string(dec.Reason)
	// A pod an earlier albdrain held before it knew the pod's kind (a meshed
	// pod, say) carries a hold that does not protect it, whichever rule
	// decides first now.
	unsupported, cannot := eligibility.Unsupported(pod)
	ex.Protected = ex.Record != nil && pod.Labels[contract.ManagedLabel] == "true" && unsupported == ""
	ex.Why = why(pod, &ex, dec, cannot)
	if ex.Protected {
		targets, err := h.Resolver.Registrations(ctx, pod)
		if err != nil {
			return ex, fmt.Errorf("resolve target groups: %w", err)
		}
		for _, t := range targets {
			ex.TargetGroups = append(ex.TargetGroups, explain.TargetGroup{ARN: t.TargetGroupARN, Port: t.Port})
		}
	}
	return ex, nil
}

// why says why the pod is protected or not: what the webhook recorded
// while it still holds, else the decision for the pod now.
func why(pod *corev1.Pod, ex *explain.Explanation, dec eligibility.Decision, cannot string) string {
	recorded := pod.Annotations[contract.SkippedKey]
	switch {
	case ex.Protected:
		return "the webhook injected the hold: the pod is behind " + strings.Join(ex.Record.Services, ", ")
	case ex.Record != nil && cannot != "":
		return "it carries a hold from an earlier albdrain that cannot protect it: " + cannot
	case dec.Result != eligibility.ResultInjected && dec.Note != "" && dec.Note == recorded:
		return "the webhook skipped it: " + recorded
	case dec.Result != eligibility.ResultInjected:
		return dec.Why
	case recorded != "":
		// The rules have changed their answer since the webhook saw the pod.
		return "the webhook skipped it: " + recorded + "; it would hold it now: recreate the pod"
	}
	return "it is behind a load balancer now, but the webhook did not mutate it: its namespace is not selected by the webhook, " +
		"it was created before albdrain or its backends, or while albdrain was unavailable; recreate the pod"
}

// found answers every lookup with a match already made.
type found lbc.Match

func (f found) Find(context.Context, string, *corev1.Pod) (lbc.Match, error) {
	return lbc.Match(f), nil
}
