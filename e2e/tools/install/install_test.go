package install

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	helmcmd "helm.sh/helm/v4/pkg/cmd"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/helmchart"
	"github.com/albdrain/albdrain/e2e/kubetest"
)

// The README's placeholders, as a user fills them in.
var placeholders = strings.NewReplacer("<region>", "eu-west-1", "<account>", "123456789012", "<pod>", "web-1")

const (
	// version is the one the README installs.
	version = "0.1.0"
	// releaseNamespace is where the README installs albdrain.
	releaseNamespace = "albdrain"
	roleARN          = "arn:aws:iam::123456789012:role/albdrain"
)

// walk is one user following the README: where things are, and what the
// steps so far have left behind.
type walk struct {
	t        *testing.T
	env      *kubetest.Env
	cs       kubernetes.Interface
	root     string // the repository
	bin      string // the build's BIN, instead of the tree's own bin/
	registry string // the README's $REGISTRY: an org path on the loopback registry
	helm     []string
	// optedIn is the namespace the README labels; pod the pod it explains.
	optedIn, pod string
	explained    bool
	// plugin waits for the kubectl plugin's build and returns its path.
	plugin func() (string, error)
}

// buildPlugin builds the kubectl plugin from the tree into w.bin, as `go
// install` does, while the steps before it run.
func (w *walk) buildPlugin() {
	path := filepath.Join(w.bin, "kubectl-albdrain")
	done := make(chan error, 1)
	go func() {
		build := exec.Command("go", "build", "-o", path, "./cmd/kubectl-albdrain")
		build.Dir = w.root
		out, err := build.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("build the plugin: %w\n%s", err, out)
		}
		done <- err
	}()
	w.plugin = sync.OnceValues(func() (string, error) { return path, <-done })
	// The build writes into w.bin, which must outlive it.
	w.t.Cleanup(func() { _, _ = w.plugin() })
}

// TestInstallAsDocumented runs the README's install section, command by
// command (Commands), as far as a machine without AWS and without a
// kubelet can: `make release-local PUSH=1` into an OCI registry on
// loopback, `helm push` of the packaged chart and `helm install` from
// oci:// by Helm's own command line (Go SDK, in process; plain HTTP for
// loopback only) into a real apiserver, the namespace label, and the
// kubectl plugin's explain. It checks what each step should leave: both
// images multi-arch in the registry, the chart there as a Helm OCI
// artifact, the release installed with the pushed digests and the IRSA
// annotation, the webhook called for the labelled namespace only, and the
// plugin reaching albdrain's Service with the Role the README names. A
// command it does not know fails it, so the docs cannot gain an untested step.
func TestInstallAsDocumented(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	w := &walk{t: t, root: root, bin: t.TempDir(), registry: u.Host + "/albdrain"}
	cmds, err := Commands(string(readme), "## Install", map[string]string{"REGISTRY": w.registry})
	if err != nil {
		t.Fatal(err)
	}
	w.buildPlugin()
	w.env = kubetest.Start(t)
	w.cs = kubernetes.NewForConfigOrDie(w.env.Config)
	w.helm = w.helmFlags(u.Hostname())

	for _, c := range cmds {
		for i := range c {
			c[i] = placeholders.Replace(c[i])
		}
		start := time.Now()
		w.run(c)
		t.Logf("$ %s (%.1fs)", strings.Join(c, " "), time.Since(start).Seconds())
		if t.Failed() {
			t.FailNow()
		}
	}
	if w.optedIn == "" || !w.explained {
		t.Errorf("the README's install never labels a namespace (%q) or explains a pod (%v)", w.optedIn, w.explained)
	}
}

// run follows one command of the README.
func (w *walk) run(c []string) {
	t := w.t
	switch {
	case len(c) == 1 && strings.Contains(c[0], "="):
		// REGISTRY=...: the test's registry stands in for it.
	case c[0] == "aws":
		t.Logf("  (skipped: no AWS here)")
	case c[0] == "make":
		w.make(c[1:])
	case c[0] == "helm" && len(c) > 1 && c[1] == "push":
		w.helmPush(c[1:])
	case c[0] == "helm" && len(c) > 1 && c[1] == "install":
		w.helmInstall(c[1:])
	case c[0] == "kubectl" && slices.Equal(c[1:3], []string{"label", "namespace"}):
		w.label(c[3:])
	case c[0] == "kubectl" && slices.Contains(c, "rollout"):
		w.rollout(c[1:])
	case c[0] == "kubectl" && len(c) > 2 && c[1] == "albdrain" && c[2] == "explain":
		w.explain(c[2:])
	default:
		t.Fatalf("the README's install runs %q, which this test does not follow: teach it the step", strings.Join(c, " "))
	}
}

// make runs the README's make command in the repository, building into a
// directory of the test's.
func (w *walk) make(args []string) {
	cmd := exec.Command("make", append(args, "BIN="+w.bin)...)
	cmd.Dir = w.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("make: %v\n%s", err, out)
	}
	// What the release workflow uploads after the same make target.
	for _, o := range readWorkflowNames(w.t, w.root).outputs {
		if _, err := os.Stat(filepath.Join(w.bin, strings.TrimPrefix(o, "bin/"))); err != nil {
			w.t.Errorf("the release workflow uploads %s, which make did not write: %v", o, err)
		}
	}
	for _, repo := range []string{"albdrain", "albdrain-hold"} {
		ref, err := name.NewTag(w.registry + "/" + repo + ":" + version)
		if err != nil {
			w.t.Fatal(err)
		}
		idx, err := remote.Index(ref)
		if err != nil {
			w.t.Errorf("%s after make: %v", ref, err)
			continue
		}
		m, err := idx.IndexManifest()
		if err != nil {
			w.t.Fatal(err)
		}
		var platforms []string
		for _, d := range m.Manifests {
			platforms = append(platforms, d.Platform.String())
		}
		slices.Sort(platforms)
		if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
			w.t.Errorf("%s holds %v, want linux/amd64 and linux/arm64", ref, platforms)
		}
	}
}

// helmFlags are what this test adds to every helm command: its own
// kubeconfig and Helm home, and plain HTTP, which it allows for a registry
// on loopback only.
func (w *walk) helmFlags(registryHost string) []string {
	if ip := net.ParseIP(registryHost); ip == nil || !ip.IsLoopback() {
		w.t.Fatalf("the registry %s is not on loopback: no plain HTTP", registryHost)
	}
	dir := w.t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kc, w.env.Config, ""); err != nil {
		w.t.Fatal(err)
	}
	return []string{"--plain-http", "--kubeconfig", kc,
		"--registry-config", filepath.Join(dir, "registry.json"), "--repository-config", filepath.Join(dir, "repositories.yaml"),
		"--repository-cache", filepath.Join(dir, "cache"), "--content-cache", filepath.Join(dir, "content")}
}

// helm runs Helm's own command line in this process.
func (w *walk) helmRun(args []string) string {
	args = append(slices.Clone(args), w.helm...)
	var out bytes.Buffer
	cmd, err := helmcmd.NewRootCmd(&out, args, func(bool) {})
	if err != nil {
		w.t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cmd.ExecuteContext(ctx); err != nil {
		w.t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// helmPush pushes the chart make packaged (the README's bin/ is the test's).
func (w *walk) helmPush(args []string) {
	for i, a := range args {
		if rest, ok := strings.CutPrefix(a, "bin/"); ok {
			args[i] = filepath.Join(w.bin, rest)
		}
	}
	w.t.Logf("  %s", strings.TrimSpace(w.helmRun(args)))
	ref, err := name.NewTag(w.registry + "/charts/albdrain:" + version)
	if err != nil {
		w.t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		w.t.Fatalf("the chart after helm push: %v", err)
	}
	m, err := img.Manifest()
	if err != nil {
		w.t.Fatal(err)
	}
	if got := string(m.Config.MediaType); got != "application/vnd.cncf.helm.config.v1+json" {
		w.t.Errorf("%s is a %s, not a Helm chart", ref, got)
	}
}

// helmInstall installs from the registry and checks what the apiserver
// holds: the release, the images by the digests pushed, the IRSA role.
func (w *walk) helmInstall(args []string) {
	w.t.Logf("  %s", firstLine(w.helmRun(args)))
	ctx := context.Background()
	secrets, err := w.cs.CoreV1().Secrets(releaseNamespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=albdrain,status=deployed"})
	if err != nil || len(secrets.Items) != 1 {
		w.t.Fatalf("helm's record of a deployed release albdrain in %s: %v, %v", releaseNamespace, secrets, err)
	}
	dep, err := w.cs.AppsV1().Deployments(releaseNamespace).Get(ctx, helmchart.ReleaseName, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	mgr := dep.Spec.Template.Spec.Containers[0]
	w.pinned("albdrain's image", mgr.Image, "albdrain")
	var helper string
	for _, a := range mgr.Args {
		if v, ok := strings.CutPrefix(a, "--helper-image="); ok {
			helper = v
		}
	}
	w.pinned("the helper image", helper, "albdrain-hold")
	sa, err := w.cs.CoreV1().ServiceAccounts(releaseNamespace).Get(ctx, helmchart.ReleaseName, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	if got := sa.Annotations["eks.amazonaws.com/role-arn"]; got != roleARN {
		w.t.Errorf("the ServiceAccount's IRSA role is %q (annotations %v), want %s", got, sa.Annotations, roleARN)
	}
	if !slices.Contains(mgr.Args, "--aws-region=eu-west-1") {
		w.t.Errorf("the manager's flags %v do not set the README's region", mgr.Args)
	}
}

// pinned checks that ref names repo in the test's registry by the digest
// of what make pushed there under the README's version.
func (w *walk) pinned(what, ref, repo string) {
	d, err := name.NewDigest(ref)
	if err != nil {
		w.t.Errorf("%s %q is not pinned by digest: %v", what, ref, err)
		return
	}
	if got, want := d.Context().Name(), w.registry+"/"+repo; got != want {
		w.t.Errorf("%s is from %s, want %s", what, got, want)
	}
	tag, err := name.NewTag(w.registry + "/" + repo + ":" + version)
	if err != nil {
		w.t.Fatal(err)
	}
	desc, err := remote.Head(tag)
	if err != nil {
		w.t.Fatal(err)
	}
	if desc.Digest.String() != d.DigestStr() {
		w.t.Errorf("%s is %s, but make pushed %s", what, ref, desc.Digest)
	}
}

// label labels the namespace as the README says, creating it first as a
// user's application namespace; a pod created there must reach albdrain's
// webhook, and one in a namespace left alone must not.
func (w *walk) label(args []string) {
	if len(args) != 2 {
		w.t.Fatalf("kubectl label namespace %v: want a namespace and one label", args)
	}
	ns, kv := args[0], args[1]
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		w.t.Fatalf("label %q is not key=value", kv)
	}
	ctx := context.Background()
	for _, n := range []string{ns, "other"} {
		if _, err := w.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			w.t.Fatal(err)
		}
	}
	obj := &corev1.Namespace{}
	if err := w.env.Client.Get(ctx, client.ObjectKey{Name: ns}, obj); err != nil {
		w.t.Fatal(err)
	}
	obj.Labels[k] = v
	if err := w.env.Client.Update(ctx, obj); err != nil {
		w.t.Fatal(err)
	}
	wh := &admissionv1.MutatingWebhookConfiguration{}
	if err := w.env.Client.Get(ctx, client.ObjectKey{Name: helmchart.ReleaseName}, wh); err != nil {
		w.t.Fatal(err)
	}
	sel, err := metav1.LabelSelectorAsSelector(wh.Webhooks[0].NamespaceSelector)
	if err != nil {
		w.t.Fatal(err)
	}
	other := &corev1.Namespace{}
	if err := w.env.Client.Get(ctx, client.ObjectKey{Name: "other"}, other); err != nil {
		w.t.Fatal(err)
	}
	if !sel.Matches(labels.Set(obj.Labels)) || sel.Matches(labels.Set(other.Labels)) {
		w.t.Errorf("the webhook's namespace selector %s: labelled %s matches %v, unlabelled matches %v, want true and false",
			sel, ns, sel.Matches(labels.Set(obj.Labels)), sel.Matches(labels.Set(other.Labels)))
	}
	w.optedIn = ns
}

// rollout stands in for the README's rollouts, which need a kubelet and a
// controller manager: the Deployment albdrain exists (its pods cannot
// run here), and a pod created in the opted-in namespace, as its
// workloads' restart would, is sent to albdrain's webhook. With no
// manager running it fails open (failurePolicy Ignore), which the
// apiserver counts; a pod in a namespace not opted in is not sent.
func (w *walk) rollout(args []string) {
	ctx := context.Background()
	switch {
	case slices.Contains(args, "status"):
		if _, err := w.cs.AppsV1().Deployments(releaseNamespace).Get(ctx, helmchart.ReleaseName, metav1.GetOptions{}); err != nil {
			w.t.Fatal(err)
		}
		w.t.Logf("  (no kubelet: the Deployment exists; its pods cannot run here)")
	case slices.Contains(args, "restart") && w.optedIn != "":
		const hook = "pods.albdrain.io"
		count := func() float64 {
			n, err := w.env.FailOpenCount(ctx, hook)
			if err != nil {
				w.t.Fatal(err)
			}
			return n
		}
		before := count()
		w.createPod("other", "web-1")
		if got := count(); got != before {
			w.t.Errorf("a pod in a namespace not opted in went to albdrain's webhook (fail-open count %v → %v)", before, got)
		}
		w.createPod(w.optedIn, "web-1")
		if got := count(); got != before+1 {
			w.t.Errorf("a pod in the opted-in namespace %s: fail-open count of %s %v → %v, want one call to albdrain's webhook", w.optedIn, hook, before, got)
		}
		w.pod = "web-1"
	default:
		w.t.Fatalf("kubectl %s: not a rollout this test follows", strings.Join(args, " "))
	}
}

func (w *walk) createPod(ns, name string) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
	if _, err := w.cs.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

// explain runs the kubectl plugin, built from this tree, as a user bound
// to the Role the README names (and allowed to read the pod), then as one
// who is not. With no manager running, the first must get through the
// apiserver to albdrain's Service and find no endpoint behind it; the
// second must be refused.
func (w *walk) explain(args []string) {
	if w.pod == "" {
		w.t.Fatal("the README explains a pod before creating one")
	}
	plugin, err := w.plugin()
	if err != nil {
		w.t.Fatal(err)
	}
	ctx := context.Background()
	asker := func(user string, bound bool) string {
		ns := w.optedIn
		if _, err := w.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: user}}, metav1.CreateOptions{}); err != nil {
			w.t.Fatal(err)
		}
		subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: user, Namespace: ns}}
		w.bind(ns, user, &rbacv1.Role{Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}, subject)
		if bound {
			w.bind(releaseNamespace, helmchart.ReleaseName+"-explain", nil, subject)
		}
		tr, err := w.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, user,
			&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
		if err != nil {
			w.t.Fatal(err)
		}
		kc := filepath.Join(w.t.TempDir(), "kubeconfig")
		if err := writeKubeconfig(kc, w.env.Config, tr.Status.Token); err != nil {
			w.t.Fatal(err)
		}
		return kc
	}
	run := func(kc string) string {
		out, err := exec.Command(plugin, append(slices.Clone(args), "--kubeconfig", kc)...).CombinedOutput()
		if err == nil {
			w.t.Fatalf("explain answered with no manager running:\n%s", out)
		}
		return string(out)
	}
	dev, stranger := asker("dev", true), asker("stranger", false)
	// Until the apiserver's RBAC cache has the bindings, it refuses.
	var out string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		out = run(dev)
		return !strings.Contains(out, "forbidden"), nil
	})
	// The answer is the apiserver's Status as JSON: its quotes are escaped.
	reached := "(get services https:" + helmchart.ReleaseName + ":443)"
	if err != nil || !strings.Contains(out, "no endpoints available for service") || !strings.Contains(out, reached) {
		w.t.Errorf("explain as a user bound to %s-explain: %v\n%s\nwant the apiserver to reach albdrain's Service and find no endpoint (no manager runs here)", helmchart.ReleaseName, err, out)
	}
	if out := run(stranger); !strings.Contains(out, "forbidden") {
		w.t.Errorf("explain as a user not bound to %s-explain:\n%s\nwant forbidden", helmchart.ReleaseName, out)
	}
	w.explained = true
}

// bind binds subjects to the Role name in ns, creating the Role from rules
// when it is given (nil: the chart's Role, which must exist).
func (w *walk) bind(ns, name string, role *rbacv1.Role, subjects []rbacv1.Subject) {
	ctx := context.Background()
	if role != nil {
		role.Name, role.Namespace = name, ns
		if _, err := w.cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			w.t.Fatal(err)
		}
	} else if _, err := w.cs.RbacV1().Roles(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		w.t.Fatalf("the Role the README binds: %v", err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name + "-" + subjects[0].Name, Namespace: ns},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}, Subjects: subjects}
	if _, err := w.cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

// writeKubeconfig writes a kubeconfig for the apiserver of cfg: with cfg's
// client certificate, or with token instead when it is set.
func writeKubeconfig(path string, cfg *rest.Config, token string) error {
	user := &clientcmdapi.AuthInfo{Token: token}
	if token == "" {
		user.ClientCertificateData, user.ClientKeyData = cfg.CertData, cfg.KeyData
	}
	kc := &clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"test": {Server: cfg.Host, CertificateAuthorityData: cfg.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"user": user},
		Contexts:       map[string]*clientcmdapi.Context{"test": {Cluster: "test", AuthInfo: "user"}},
		CurrentContext: "test",
	}
	return clientcmd.WriteToFile(*kc, path)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
