package explain

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
)

// Querier sends the explain query (namespace, name, uid) to the manager
// and returns its JSON answer.
type Querier func(ctx context.Context, query map[string]string) ([]byte, error)

// Manager locates albdrain's manager Service, through which the apiserver's
// service proxy reaches the explain endpoint.
type Manager struct {
	Namespace, Service string
	// Port is the Service's webhook port, by number or name.
	Port string
}

// ViaServiceProxy queries the manager through the apiserver's service
// proxy; the caller needs get on the manager Service's services/proxy, and
// a bearer token (a token or exec credentials in the kubeconfig, not a
// client certificate): the manager checks that its user may get the pod.
func ViaServiceProxy(cfg *rest.Config, m Manager) (Querier, error) {
	cfg = rest.CopyConfig(cfg)
	// Innermost wrapper: it sees the Authorization header that token and
	// exec credential wrappers have set, and repeats it for the manager.
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return repeatToken{rt} })
	c, err := coreV1(cfg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, query map[string]string) ([]byte, error) {
		req := c.Get().Namespace(m.Namespace).Resource("services").SubResource("proxy").
			Name(utilnet.JoinSchemeNamePort("https", m.Service, m.Port)).Suffix(Path)
		for k, v := range query {
			req = req.Param(k, v)
		}
		raw, err := req.DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("ask albdrain's manager (service %s/%s): %w: %s", m.Namespace, m.Service, err, raw)
		}
		return raw, nil
	}, nil
}

// repeatToken copies the request's bearer token into TokenHeader.
type repeatToken struct{ next http.RoundTripper }

func (t repeatToken) RoundTrip(r *http.Request) (*http.Response, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return t.next.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set(TokenHeader, auth)
	return t.next.RoundTrip(r)
}

// coreV1 is a client of cfg's core/v1 API that decodes core/v1's types
// alone: client-go's typed clientset registers every API group's, which
// would more than double the plugin.
func coreV1(cfg *rest.Config) (*rest.RESTClient, error) {
	cfg = rest.CopyConfig(cfg)
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cfg.APIPath = "/api"
	cfg.GroupVersion = &corev1.SchemeGroupVersion
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	return rest.RESTClientFor(cfg)
}

// Pods reads pods with the credentials of its config.
type Pods struct{ c *rest.RESTClient }

// PodsOf returns the Pods of cfg.
func PodsOf(cfg *rest.Config) (*Pods, error) {
	c, err := coreV1(cfg)
	if err != nil {
		return nil, err
	}
	return &Pods{c: c}, nil
}

// Get reads the pod ns/name.
func (p *Pods) Get(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	err := p.c.Get().Namespace(ns).Resource("pods").Name(name).Do(ctx).Into(pod)
	return pod, err
}

// Ask reads the pod with the caller's own credentials, so the caller must
// be allowed to get it, and asks the manager to explain it.
func Ask(ctx context.Context, pods *Pods, ask Querier, ns, name string) (Explanation, error) {
	pod, err := pods.Get(ctx, ns, name)
	if err != nil {
		return Explanation{}, fmt.Errorf("get pod: %w", err)
	}
	raw, err := ask(ctx, map[string]string{"namespace": ns, "name": name, "uid": string(pod.UID)})
	if err != nil {
		return Explanation{}, err
	}
	var ex Explanation
	if err := json.Unmarshal(raw, &ex); err != nil {
		return Explanation{}, fmt.Errorf("decode the manager's answer: %w", err)
	}
	return ex, nil
}

// Write prints the explanation for people.
func (e Explanation) Write(w io.Writer) error {
	var b strings.Builder
	verdict := "NOT protected"
	if e.Protected {
		verdict = "protected"
	}
	fmt.Fprintf(&b, "Pod %s/%s: %s by albdrain\n  Why: %s\n", e.Namespace, e.Name, verdict, e.Why)
	if r := e.Record; r != nil {
		fmt.Fprintf(&b, "  Injected: mode %s, max hold %ds, containers %s, ports %v, load balancers %s\n",
			r.Mode, r.MaxHoldSeconds, strings.Join(r.Containers, ","), r.Ports, strings.Join(r.LoadBalancers, ","))
	}
	if len(e.Backends) > 0 {
		b.WriteString("  Backends matched now:\n")
		for _, be := range e.Backends {
			lb := be.LoadBalancer
			if lb == "" {
				lb = "load balancer unknown"
			}
			fmt.Fprintf(&b, "    Service %s target port %s (%s) via %s\n", be.Service, be.TargetPort, lb, be.via())
		}
	}
	for _, s := range e.Skipped {
		fmt.Fprintf(&b, "  Skipped: %s\n", s)
	}
	if e.Protected {
		if len(e.TargetGroups) == 0 {
			b.WriteString("  Target groups: none resolved yet (the load balancer controller has not bound the Service)\n")
		}
		for _, tg := range e.TargetGroups {
			fmt.Fprintf(&b, "  Target group: %s port %d\n", tg.ARN, tg.Port)
		}
	}
	fmt.Fprintf(&b, "  Rules on: %s\n", strings.Join(append([]string{"Service", "Ingress"}, e.ServedAPIs...), ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

func (be Backend) via() string {
	switch {
	case be.Route != "":
		return be.Route + " on Gateway " + be.Gateway
	case be.Ingress != "":
		return "Ingress " + be.Ingress
	case be.TargetGroupBinding != "":
		return "TargetGroupBinding " + be.TargetGroupBinding
	default:
		return "its own load balancer (Service of type LoadBalancer)"
	}
}
