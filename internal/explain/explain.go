// Package explain answers, for one pod, whether albdrain protects it and why
// not: what the webhook recorded, the load balancer backends the shared
// lbc.Finder matches now, the rule that skips it, and the target groups the
// watcher would hold it on. The manager serves it on its webhook server, for
// the kubectl albdrain plugin through the apiserver's service proxy.
package explain

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

	"github.com/albdrain/albdrain/drain/watcher/targetgroups"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/eligibility"
	"github.com/albdrain/albdrain/internal/lbc"
)

// Path is where the manager serves explanations.
const Path = "/explain"

// Backend is one matched load balancer backend.
type Backend struct {
	Service            string `json:"service"`
	TargetPort         string `json:"targetPort"`
	LoadBalancer       string `json:"loadBalancer,omitempty"`
	TargetGroupBinding string `json:"targetGroupBinding,omitempty"`
	Ingress            string `json:"ingress,omitempty"`
	Route              string `json:"route,omitempty"`
	Gateway            string `json:"gateway,omitempty"`
}

// TargetGroup is a target group the watcher resolved for the pod.
type TargetGroup struct {
	ARN  string `json:"arn"`
	Port int32  `json:"port"`
}

// Explanation is the answer for one pod.
type Explanation struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Protected is true when the webhook injected the hold.
	Protected bool `json:"protected"`
	// Why says why the pod is, or is not, protected.
	Why string `json:"why"`
	// Record is what the webhook wrote into the pod, when it did.
	Record *contract.Record `json:"record,omitempty"`
	// Backends and Skipped are what the rules match for the pod now.
	Backends []Backend `json:"backends,omitempty"`
	Skipped  []string  `json:"skipped,omitempty"`
	// TargetGroups are where the watcher would look for the pod's targets now.
	TargetGroups []TargetGroup `json:"targetGroups,omitempty"`
	// ServedAPIs are the optional APIs whose rules are on.
	ServedAPIs []string `json:"servedAPIs"`
}

// Handler serves explanations, only to a caller whose bearer token (in
// TokenHeader) may get the pod, and at most Limit's rate for all callers
// together. A caller must also name the pod's UID.
type Handler struct {
	// Pods reads pods from the apiserver: the manager's cache holds managed pods only.
	Pods     client.Reader
	Finder   *lbc.Finder
	Resolver targetgroups.Resolver
	// Auth decides who may ask; Limit bounds how often, before any
	// apiserver call.
	Auth  Authorizer
	Limit *rate.Limiter
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
		http.Error(w, "send your bearer token in "+TokenHeader+" (kubectl albdrain does, from a kubeconfig with a token or exec credentials)", http.StatusUnauthorized)
		return
	}
	switch err := h.Auth.MayGetPod(r.Context(), token, ns, name); {
	case errors.Is(err, errUnauthenticated):
		http.Error(w, "the token in "+TokenHeader+" is not valid", http.StatusUnauthorized)
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
func (h *Handler) Explain(ctx context.Context, pod *corev1.Pod) (Explanation, error) {
	ex := Explanation{Namespace: pod.Namespace, Name: pod.Name, ServedAPIs: []string{}}
	for _, a := range h.Finder.Served.List() {
		ex.ServedAPIs = append(ex.ServedAPIs, string(a))
	}
	found, err := h.Finder.Find(ctx, pod.Namespace, pod)
	if err != nil {
		return ex, fmt.Errorf("find backends: %w", err)
	}
	for _, b := range found.Backends {
		ex.Backends = append(ex.Backends, Backend{Service: b.Service, TargetPort: b.TargetPort.String(), LoadBalancer: string(b.Kind),
			TargetGroupBinding: b.TargetGroupBinding, Ingress: b.Ingress, Route: b.Route, Gateway: b.Gateway})
	}
	ex.Skipped = found.Skipped
	if v, ok := pod.Annotations[contract.InjectedKey]; ok {
		var rec contract.Record
		if json.Unmarshal([]byte(v), &rec) == nil {
			ex.Record = &rec
		}
	}
	// A pod an earlier albdrain held before it knew the pod's kind (a meshed
	// pod, say) carries a hold that does not protect it.
	unsupported, _ := eligibility.Unsupported(pod)
	ex.Protected = ex.Record != nil && pod.Labels[contract.ManagedLabel] == "true" && unsupported == ""
	ex.Why = why(pod, &ex)
	if ex.Protected {
		targets, err := h.Resolver.Registrations(ctx, pod)
		if err != nil {
			return ex, fmt.Errorf("resolve target groups: %w", err)
		}
		for _, t := range targets {
			ex.TargetGroups = append(ex.TargetGroups, TargetGroup{ARN: t.TargetGroupARN, Port: t.Port})
		}
	}
	return ex, nil
}

// why picks the rule that decided, in the webhook's order.
func why(pod *corev1.Pod, ex *Explanation) string {
	switch {
	case ex.Protected:
		return "the webhook injected the hold: the pod is behind " + strings.Join(ex.Record.Services, ", ")
	case strings.EqualFold(pod.Annotations[contract.InjectKey], "disabled"):
		return "the pod opts out with " + contract.InjectKey + "=disabled"
	case pod.Annotations[contract.SkippedKey] != "":
		return "the webhook skipped it: " + pod.Annotations[contract.SkippedKey]
	}
	if _, why := eligibility.Unsupported(pod); why != "" {
		if ex.Record != nil {
			return "it carries a hold from an earlier albdrain that cannot protect it: " + why
		}
		return "albdrain cannot hold it: " + why
	}
	if len(ex.Backends) == 0 && len(ex.Skipped) > 0 {
		return "it is behind a load balancer, but not as an ip target: " + strings.Join(ex.Skipped, "; ")
	}
	if len(ex.Backends) == 0 {
		return "no rule puts it behind an AWS load balancer as an ip target"
	}
	return "it is behind a load balancer now, but the webhook did not mutate it: its namespace is not selected by the webhook, " +
		"it was created before albdrain or its backends, or while albdrain was unavailable; recreate the pod"
}
