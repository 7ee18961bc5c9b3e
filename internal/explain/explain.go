// Package explain is what the kubectl albdrain plugin and the manager
// exchange about one pod: the question, the answer (Explanation) and the
// plugin's side, which asks through the apiserver's service proxy. The
// manager answers in package explain/serve. Kept free of the manager's
// code, so the plugin links only client-go.
package explain

import "github.com/albdrain/albdrain/internal/contract"

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
	// Reason is the rule that decides for the pod as it is now: the
	// webhook's reason for it, the label of its mutations counter.
	Reason string `json:"reason"`
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

// TokenHeader carries the caller's bearer token to the manager. The
// apiserver's service proxy drops the Authorization header once it has
// authenticated the caller, and forwards no identity, so the plugin repeats
// its token here.
const TokenHeader = "X-Albdrain-Authorization"
