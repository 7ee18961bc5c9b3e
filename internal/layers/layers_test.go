package layers

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/albdrain/albdrain/"

// known are the arrows that break a rule today, each with the rule it breaks.
// The list may only shrink: an entry whose arrow is gone fails the test too,
// so it is deleted once its fix lands.
var known = map[arrow]string{}

// arrow is a dependency of from on to, both relative to the module.
type arrow struct{ from, to string }

// under reports whether pkg is tree or below it.
func under(pkg, tree string) bool { return pkg == tree || strings.HasPrefix(pkg, tree+"/") }

// rule is one layout rule: every dependency of a package it applies to must be allowed.
type rule struct {
	name    string
	applies func(pkg string) bool
	allowed func(dep string) bool
}

func anyOf(trees ...string) func(string) bool {
	return func(p string) bool { return slices.ContainsFunc(trees, func(t string) bool { return under(p, t) }) }
}

func not(f func(string) bool) func(string) bool { return func(p string) bool { return !f(p) } }

var rules = []rule{
	{"internal/contract imports no albdrain package", anyOf("internal/contract"), anyOf()},
	{"internal/lbc imports no albdrain package (lbctest only lbc)",
		func(p string) bool { return under(p, "internal/lbc") && p != "internal/lbc/lbctest" }, anyOf()},
	{"internal/lbc/lbctest imports only internal/lbc", anyOf("internal/lbc/lbctest"), anyOf("internal/lbc")},
	{"the in-pod helper imports only itself and internal/contract", anyOf("drain/helper", "cmd/albdrain-hold"),
		anyOf("drain/helper", "internal/contract", "cmd/albdrain-hold")},
	{"drain/watcher never imports webhook or cmd", anyOf("drain/watcher"), not(anyOf("webhook", "cmd"))},
	{"webhook never imports drain", anyOf("webhook"), not(anyOf("drain"))},
	{"explain imports neither webhook nor drain/watcher", anyOf("internal/explain"), not(anyOf("webhook", "drain/watcher"))},
	{"the kubectl plugin links none of the manager: only explain's wire and client, and the contract",
		func(p string) bool { return p == "cmd/kubectl-albdrain" || p == "internal/explain" },
		func(p string) bool {
			return p == "internal/explain" || p == "internal/contract" || p == "cmd/kubectl-albdrain"
		}},
	{"cmd/albdrain/app is at the top: only the manager's main imports it", not(anyOf("cmd/albdrain")), not(anyOf("cmd/albdrain/app"))},
	{"only commands import commands", not(anyOf("cmd")), not(anyOf("cmd"))},
}

// foreign are the code bases the in-pod helper must not carry: it runs in
// every managed pod, and its image is copied into application images.
var foreign = []string{"k8s.io/", "sigs.k8s.io/", "github.com/aws/"}

// packages lists every package of the root module, relative to the module,
// with its dependencies (transitive, tests excluded) as `go list` sees them.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkgs[strings.TrimPrefix(f[0], module)] = f[1:]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages, not albdrain's tree", len(pkgs))
	}
	return pkgs
}

func TestNoImportRunsUpward(t *testing.T) {
	pkgs := packages(t)
	seen := map[arrow]bool{}
	for pkg, deps := range pkgs {
		for _, dep := range deps {
			dep, ours := strings.CutPrefix(dep, module)
			if !ours {
				if anyOf("drain/helper", "cmd/albdrain-hold")(pkg) && slices.ContainsFunc(foreign, func(f string) bool { return strings.HasPrefix(dep, f) }) {
					t.Errorf("%s depends on %s: the in-pod helper carries no Kubernetes or AWS code", pkg, dep)
				}
				continue
			}
			for _, r := range rules {
				if !r.applies(pkg) || r.allowed(dep) {
					continue
				}
				a := arrow{pkg, dep}
				if why, ok := known[a]; ok && why == r.name {
					seen[a] = true
					t.Logf("known exception: %s depends on %s (%s)", pkg, dep, r.name)
					continue
				}
				t.Errorf("%s depends on %s: %s", pkg, dep, r.name)
			}
		}
	}
	for a, why := range known {
		if !seen[a] {
			t.Errorf("%s no longer depends on %s: delete its known exception (%s) so the rule holds from now on", a.from, a.to, why)
		}
	}
}

// The rules name trees that exist: a rule about a renamed tree would hold trivially.
func TestRulesNameRealTrees(t *testing.T) {
	pkgs := packages(t)
	for _, tree := range []string{"internal/contract", "internal/lbc", "internal/lbc/lbctest", "drain/helper", "cmd/albdrain-hold",
		"drain/watcher", "webhook", "internal/explain", "cmd/albdrain/app"} {
		if _, ok := pkgs[tree]; !ok {
			t.Errorf("no package %s: update the layout rules", tree)
		}
	}
	for a := range known {
		if _, ok := pkgs[a.from]; !ok {
			t.Errorf("known exception from %s, which does not exist", a.from)
		}
	}
}

// pluginForeign are what the kubectl plugin must not link: cli-runtime
// (kustomize and the resource builder come with it) and client-go's
// clientset scheme, which registers every API group. With them the plugin
// was 592 packages and 28.3 MB; it reads one pod and calls one proxy.
var pluginForeign = []string{"k8s.io/cli-runtime/", "sigs.k8s.io/kustomize/", "k8s.io/client-go/kubernetes/scheme", "k8s.io/client-go/discovery"}

func TestPluginLinksNoClientset(t *testing.T) {
	deps, ok := packages(t)["cmd/kubectl-albdrain"]
	if !ok {
		t.Fatal("no cmd/kubectl-albdrain")
	}
	for _, dep := range deps {
		if slices.ContainsFunc(pluginForeign, func(f string) bool { return strings.HasPrefix(dep, f) }) {
			t.Errorf("the kubectl plugin links %s", dep)
		}
	}
}
