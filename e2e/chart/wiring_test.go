package chart

import (
	"cmp"
	"flag"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/webhook"
)

// flagValues maps the manager's flags to their rendered values.
func flagValues(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		m[name] = value
	}
	return m
}

func str(o *unstructured.Unstructured, path ...string) string {
	s, _, _ := unstructured.NestedString(o.Object, path...)
	return s
}

func nested(m map[string]any, path ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(m, path...)
	return v
}

// namedPorts maps port names to numbers in a list of ports under key.
func namedPorts(ports []any, key string) map[string]any {
	m := map[string]any{}
	for _, p := range ports {
		pm := p.(map[string]any)
		m[pm["name"].(string)] = pm[key]
	}
	return m
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// TestWiring checks that the rendered objects agree with each other: what
// the apiserver, the pods and the kubelet are told matches what the manager
// serves. The install test cannot see these through a Service, since envtest
// does not route to one.
func TestWiring(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) { checkWiring(t, vs.values, objects(t, mustRender(t, vs.values))) })
	}
}

func checkWiring(t *testing.T, values string, objs []*unstructured.Unstructured) {
	t.Helper()
	flags := flagValues(managerArgs(t, objs))
	svc := find(t, objs, "Service", releaseName)
	dep := find(t, objs, "Deployment", releaseName)
	wh := find(t, objs, "MutatingWebhookConfiguration", releaseName)
	pod, _, _ := unstructured.NestedMap(dep.Object, "spec", "template")
	container := nested(pod, "spec", "containers").([]any)[0].(map[string]any)
	svcPorts, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	targets, numbers := namedPorts(svcPorts, "targetPort"), namedPorts(svcPorts, "port")
	containerPorts := namedPorts(container["ports"].([]any), "containerPort")
	dnsName := svc.GetName() + "." + svc.GetNamespace() + ".svc"
	num := func(v any) string { return strconv.FormatInt(v.(int64), 10) }

	expect := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	// The apiserver: Service port 443 -> the webhook's container port.
	hook := nested(wh.Object, "webhooks").([]any)[0].(map[string]any)
	ref := nested(hook, "clientConfig", "service").(map[string]any)
	expect("webhook service", ref["namespace"].(string)+"/"+ref["name"].(string), svc.GetNamespace()+"/"+svc.GetName())
	expect("webhook path", ref["path"].(string), webhook.Path)
	expect("webhook service port", num(ref["port"]), num(numbers["webhook"]))
	expect("Service webhook targetPort", targets["webhook"].(string), "webhook")
	expect("webhook container port", num(containerPorts["webhook"]), flags["webhook-port"])
	// The pods: the hold endpoint through the Service, under the certificate's name.
	expect("--watcher-url", flags["watcher-url"], "https://"+dnsName+":"+num(numbers["hold"]))
	expect("Service hold targetPort", targets["hold"].(string), "hold")
	expect("hold container port", num(containerPorts["hold"]), portOf(flags["hold-bind-address"]))
	// The pods' init container: its own image if set, the manager's otherwise.
	helperImage, _, _ := unstructured.NestedString(parseValues(t, values), "hold", "helperImage")
	expect("--helper-image", flags["helper-image"], cmp.Or(helperImage, container["image"].(string)))
	// The kubelet: the certificate Secret mounted where both servers read it.
	mount := container["volumeMounts"].([]any)[0].(map[string]any)
	volume := nested(pod, "spec", "volumes").([]any)[0].(map[string]any)
	secretName := nested(volume, "secret", "secretName").(string)
	expect("certificate volume", mount["name"].(string), volume["name"].(string))
	expect("--webhook-cert-dir", flags["webhook-cert-dir"], mount["mountPath"].(string))
	expect("--hold-cert-dir", flags["hold-cert-dir"], mount["mountPath"].(string))
	// Whoever fills the Secret issues for the Service's name and gets the CA
	// to the apiserver.
	if flags["cert-rotation"] == "true" {
		expect("--cert-dns-name", flags["cert-dns-name"], dnsName)
		expect("--cert-secret-name", flags["cert-secret-name"], secretName)
		expect("--cert-secret-namespace", flags["cert-secret-namespace"], releaseNamespace)
		expect("--webhook-config-name", flags["webhook-config-name"], wh.GetName())
		find(t, objs, "Secret", secretName)
	} else {
		expect("--cert-rotation", flags["cert-rotation"], "false")
		cert := find(t, objs, "Certificate", releaseName)
		expect("Certificate secretName", str(cert, "spec", "secretName"), secretName)
		names, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
		expect("Certificate dnsNames", strings.Join(names, ","), dnsName)
		expect("cainjector source", wh.GetAnnotations()["cert-manager.io/inject-ca-from"], cert.GetNamespace()+"/"+cert.GetName())
		expect("--watcher-ca-file", flags["watcher-ca-file"], mount["mountPath"].(string)+"/ca.crt")
	}
	// Probes and metrics on the ports the manager listens on.
	expect("healthz container port", num(containerPorts["healthz"]), portOf(flags["health-probe-bind-address"]))
	expect("metrics container port", num(containerPorts["metrics"]), portOf(flags["metrics-bind-address"]))
	for _, probe := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
		expect(probe+" port", nested(container, probe, "httpGet", "port").(string), "healthz")
	}
	// The replica's stop: its own Service's EndpointSlices, its own pod IP
	// and namespace from the downward API, and steps the kubelet waits for.
	expect("--shutdown-service", flags["shutdown-service"], svc.GetName())
	fieldEnv := map[string]string{}
	for _, e := range container["env"].([]any) {
		e := e.(map[string]any)
		if path, ok := nested(e, "valueFrom", "fieldRef", "fieldPath").(string); ok {
			fieldEnv[e["name"].(string)] = path
		}
	}
	expect("--pod-ip", flags["pod-ip"], "$(POD_IP)")
	expect("POD_IP", fieldEnv["POD_IP"], "status.podIP")
	expect("--pod-namespace", flags["pod-namespace"], "$(POD_NAMESPACE)")
	expect("POD_NAMESPACE", fieldEnv["POD_NAMESPACE"], "metadata.namespace")
	var steps time.Duration
	for _, f := range []string{"shutdown-endpoints-timeout", "shutdown-settle", "shutdown-grace"} {
		d, err := time.ParseDuration(flags[f])
		if err != nil {
			t.Errorf("--%s: %v", f, err)
		}
		steps += d
	}
	if grace := time.Duration(nested(pod, "spec", "terminationGracePeriodSeconds").(int64)) * time.Second; grace < steps {
		t.Errorf("terminationGracePeriodSeconds %s is shorter than the stop's steps %s", grace, steps)
	}
	// The webhook's objectSelector names the label albdrain's own pods carry.
	self := nested(hook, "objectSelector", "matchExpressions").([]any)[0].(map[string]any)
	label := self["key"].(string)
	expect("objectSelector excludes", self["values"].([]any)[0].(string), str(dep, "spec", "template", "metadata", "labels", label))
}

// Every manager flag has a value in the chart: a flag added to the manager
// without one fails here until the chart can set it.
func TestEveryManagerFlagIsSettable(t *testing.T) {
	passed := map[string]bool{}
	for _, vs := range valueSets {
		for name := range flagValues(managerArgs(t, objects(t, mustRender(t, vs.values)))) {
			passed[name] = true
		}
	}
	var cfg app.Config
	fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
	cfg.BindFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !passed[f.Name] {
			t.Errorf("the chart never passes --%s", f.Name)
		}
	})
}
