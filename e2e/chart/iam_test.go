package chart

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// policyActions reads the ELBv2 actions an IAM policy document allows.
func policyActions(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Effect string
			Action json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var actions []string
	for _, s := range doc.Statement {
		if s.Effect != "Allow" {
			t.Errorf("%s: statement with effect %q", path, s.Effect)
		}
		var list []string
		if err := json.Unmarshal(s.Action, &list); err != nil {
			var one string
			if err := json.Unmarshal(s.Action, &one); err != nil {
				t.Fatalf("%s: action %s", path, s.Action)
			}
			list = []string{one}
		}
		for _, a := range list {
			op, ok := strings.CutPrefix(a, "elasticloadbalancing:")
			if !ok {
				t.Errorf("%s: %s is not an ELBv2 action", path, a)
			}
			actions = append(actions, op)
		}
	}
	slices.Sort(actions)
	return actions
}

// elbv2Calls finds the ELBv2 operations the watcher's code calls, by the
// SDK input types and paginators it uses.
func elbv2Calls(t *testing.T) []string {
	t.Helper()
	call := regexp.MustCompile(`elbv2\.(\w+)Input\b|New(\w+)Paginator\(`)
	seen := map[string]bool{}
	err := filepath.WalkDir(filepath.Join("..", "..", "drain"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range call.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]+m[2]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for op := range seen {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	return ops
}

// The policies allow exactly what the code calls: a new call without a
// policy change would be denied in every cluster, and an action nothing
// calls is privilege for nothing. Deregistration is kept apart, for the
// optional early-deregistration flag only.
func TestIAMPoliciesMatchTheCalls(t *testing.T) {
	base := policyActions(t, filepath.Join("..", "..", "iam", "albdrain.json"))
	early := policyActions(t, filepath.Join("..", "..", "iam", "albdrain-early-deregister.json"))
	if !slices.Equal(early, []string{"DeregisterTargets"}) {
		t.Errorf("early-deregistration policy allows %v, want only DeregisterTargets", early)
	}
	for _, a := range base {
		if !strings.HasPrefix(a, "Describe") {
			t.Errorf("base policy allows %s; it should only read", a)
		}
	}
	got := slices.Sorted(slices.Values(append(slices.Clone(base), early...)))
	if want := elbv2Calls(t); !slices.Equal(got, want) {
		t.Errorf("policies allow %v, the code calls %v", got, want)
	}
}
