// Package eligibility is albdrain's one decision whether a pod gets the
// hold: the webhook acts on it when the pod is created, and explain tells it
// for a pod that exists. Both call Rules.Decide, so they cannot disagree on
// the order of the rules or on their reasons.
package eligibility

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// Result is what the webhook does with the pod: the label "result" of its
// mutations counter.
type Result string

// The results.
const (
	ResultInjected Result = "injected"
	ResultSkipped  Result = "skipped"
	ResultDenied   Result = "denied"
	ResultError    Result = "error"
)

// Reason is the rule that decided: the label "reason" of the webhook's
// mutations counter.
type Reason string

// The reasons, in the order Decide tries the rules.
const (
	ReasonOptedOut        Reason = "opted_out"
	ReasonSystemNamespace Reason = "system_namespace"
	ReasonLookupFailed    Reason = "lookup_failed"
	ReasonNotIPTarget     Reason = "not_ip_target"
	ReasonNoBackend       Reason = "no_alb_backend"
	ReasonWindows         Reason = "windows"
	ReasonHostNetwork     Reason = "host_network"
	ReasonServiceMesh     Reason = "service_mesh"
	ReasonInvalidOverride Reason = "invalid_override"
	ReasonNoServingPort   Reason = "no_serving_container"
	ReasonBehindALB       Reason = "behind_alb"
)

// Decision is the result of the rules for one pod.
type Decision struct {
	Result Result
	Reason Reason
	// Why says why, for people.
	Why string
	// Note is what the webhook records in a skipped pod's
	// contract.SkippedKey annotation; empty when it records nothing.
	Note string
	// Match is what the lookup of the pod's backends found; empty when a
	// rule decided before the lookup.
	Match lbc.Match
	// Err is the lookup's error (ResultError) or what is wrong with the
	// pod's own annotations (ResultDenied).
	Err error
}

// Finder looks up a pod's load balancer backends: lbc.Finder.
type Finder interface {
	Find(ctx context.Context, namespace string, pod *corev1.Pod) (lbc.Match, error)
}

// Rules is what the decision reads besides the pod.
type Rules struct {
	// Finder names the pod's backends.
	Finder Finder
	// Overrides checks the pod's own albdrain annotations against the
	// webhook's defaults; nil takes them as valid.
	Overrides func(annotations map[string]string) error
}

// Decide applies the rules, in order, to pod in namespace ns (a pod being
// created may not carry its namespace yet). The first rule that applies
// decides; the lookup, the only step that reads the cluster, runs only
// once the pod's own choices have not decided already.
func (r Rules) Decide(ctx context.Context, ns string, pod *corev1.Pod) Decision {
	if strings.EqualFold(pod.Annotations[contract.InjectKey], "disabled") {
		return Decision{Result: ResultSkipped, Reason: ReasonOptedOut, Why: "the pod opts out with " + contract.InjectKey + "=disabled"}
	}
	// The apiserver's namespaceSelector should already keep these out; this
	// guards a misconfigured selector from touching the control plane.
	if ns == metav1.NamespaceSystem {
		return Decision{Result: ResultSkipped, Reason: ReasonSystemNamespace, Why: "albdrain never holds pods in " + metav1.NamespaceSystem}
	}
	m, err := r.Finder.Find(ctx, ns, pod)
	if err != nil {
		return Decision{Result: ResultError, Reason: ReasonLookupFailed, Why: "looking up its load balancer backends failed: " + err.Error(), Err: err}
	}
	d := Decision{Result: ResultSkipped, Match: m}
	if len(m.Backends) == 0 {
		if len(m.Skipped) == 0 {
			d.Reason, d.Why = ReasonNoBackend, "no rule puts it behind an AWS load balancer as an ip target"
			return d
		}
		d.Reason, d.Note = ReasonNotIPTarget, strings.Join(m.Skipped, "; ")
		d.Why = "it is behind a load balancer, but not as an ip target: " + d.Note
		return d
	}
	if reason, why := Unsupported(pod); reason != "" {
		d.Reason, d.Note, d.Why = reason, why, "albdrain cannot hold it: "+why
		return d
	}
	// Before the serving ports: a typo in albdrain's annotations is refused
	// whenever albdrain would read them, not only when it would hold.
	if r.Overrides != nil {
		if err := r.Overrides(pod.Annotations); err != nil {
			d.Result, d.Reason, d.Err = ResultDenied, ReasonInvalidOverride, err
			d.Why = "its albdrain annotations are invalid: " + err.Error()
			return d
		}
	}
	served := servedBackends(&pod.Spec, m.Backends)
	if len(served) == 0 {
		d.Reason = ReasonNoServingPort
		d.Why = "it is behind a load balancer, but no port of the pod serves " + targetPorts(m.Backends)
		return d
	}
	var services []string
	for _, b := range served {
		if !slices.Contains(services, b.Service) {
			services = append(services, b.Service)
		}
	}
	d.Result, d.Reason = ResultInjected, ReasonBehindALB
	d.Why = "it serves ip targets of a load balancer behind Service " + strings.Join(services, ", ")
	return d
}

// servedBackends are the backends that some port of the pod serves,
// resolved as the load balancer controller does (lbc.ServingPorts): the
// mutation holds the containers behind them, and has nothing to hold
// without one.
func servedBackends(spec *corev1.PodSpec, backends []lbc.Backend) []lbc.Backend {
	var out []lbc.Backend
	for _, b := range backends {
		if len(lbc.ServingPorts(spec, b.TargetPort)) > 0 {
			out = append(out, b)
		}
	}
	return out
}

func targetPorts(backends []lbc.Backend) string {
	var out []string
	for _, b := range backends {
		if s := fmt.Sprintf("Service %s target port %s", b.Service, b.TargetPort.String()); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}
