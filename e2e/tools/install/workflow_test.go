package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// workflow is a GitHub Actions workflow, as far as these tests read it.
type workflow struct {
	Jobs map[string]struct {
		Steps []struct {
			Run  string            `json:"run"`
			With map[string]string `json:"with"`
		} `json:"steps"`
	} `json:"jobs"`
}

// workflowNames are what the repository's workflows name in their run
// scripts: make invocations (each as its words), files of the repository
// they read, and files under bin/release they expect a make target to have
// written ($VERSION as the README's version).
type workflowNames struct {
	makes   [][]string
	files   []string
	outputs []string
}

// readWorkflowNames reads every workflow under root/.github/workflows.
func readWorkflowNames(t *testing.T, root string) workflowNames {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.y*ml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no workflows under %s/.github/workflows: %v", root, err)
	}
	var n workflowNames
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var wf workflow
		if err := yaml.Unmarshal(raw, &wf); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, job := range wf.Jobs {
			for _, s := range job.Steps {
				if f := s.With["go-version-file"]; f != "" {
					n.files = append(n.files, f)
				}
				n.readScript(s.Run)
			}
		}
	}
	return n
}

// readScript collects the names in one run script. Its own outputs (tee,
// redirections, mkdir) are not expected of anyone else.
func (n *workflowNames) readScript(script string) {
	var own []string
	for _, line := range strings.Split(script, "\n") {
		words := strings.Fields(line)
		for i, w := range words {
			w = strings.Trim(w, `"';()`)
			prev := ""
			if i > 0 {
				prev = words[i-1]
			}
			switch {
			case w == "make" && (i == 0 || prev == "&&" || prev == ";"):
				var call []string
				for _, a := range words[i+1:] {
					if strings.ContainsAny(a, "|;&") {
						break
					}
					call = append(call, a)
				}
				n.makes = append(n.makes, call)
			case prev == "tee" || prev == ">" || prev == ">>" || prev == "-p":
				own = append(own, w)
			case strings.HasPrefix(w, "bin/release/"):
				if out := strings.ReplaceAll(w, "$VERSION", version); !strings.Contains(out, "$") {
					n.outputs = append(n.outputs, out)
				}
			case !strings.Contains(w, "$") && (strings.HasPrefix(w, "./") || len(w) > 1 && w[0] == '.' && w[1] != '.' && w[1] != '/'):
				n.files = append(n.files, w)
			}
		}
	}
	n.outputs = slices.DeleteFunc(n.outputs, func(o string) bool {
		return slices.ContainsFunc(own, func(p string) bool { return o == p || strings.HasPrefix(o, p+"/") })
	})
}

// TestWorkflowNamesExist: the release workflow cannot run here (no GitHub,
// no registry credentials, no Sigstore), so this checks what it relies on
// from the tree: every make invocation it runs is one the Makefile accepts
// (`make -n` with its variables), and every file of the repository it names
// exists. (actionlint, in `make lint`, checks its syntax, expressions and
// shell; TestInstallAsDocumented checks that release-local writes the
// bin/release files it uploads.)
func TestWorkflowNamesExist(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	n := readWorkflowNames(t, root)
	if len(n.makes) == 0 || len(n.files) == 0 || len(n.outputs) == 0 {
		t.Fatalf("read no make invocation, file or release output from the workflows: %+v", n)
	}
	for _, call := range n.makes {
		args := []string{"-n", "-C", root}
		for _, a := range call {
			// The workflow's shell variables, as a tag push sets them.
			args = append(args, strings.NewReplacer(`"`, "", "$version", version, "$REGISTRY", "ghcr.io/albdrain").Replace(a))
		}
		if out, err := exec.Command("make", args...).CombinedOutput(); err != nil {
			t.Errorf("the workflow runs make %s, which the Makefile refuses: %v\n%s", strings.Join(call, " "), err, out)
		}
	}
	for _, f := range n.files {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("the workflow names %s: %v", f, err)
		}
	}
}
