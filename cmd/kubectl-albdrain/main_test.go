package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/albdrain/albdrain/internal/explain"
)

func execute(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := newRootCommand(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestHelp checks that --help works as kubectl users expect, at both levels,
// and lists kubectl's connection flags.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"explain", "--help"}, {"help", "explain"}} {
		out, err := execute(args...)
		if err != nil {
			t.Errorf("%q: %v", args, err)
			continue
		}
		for _, want := range []string{"kubectl albdrain", "--context", "--namespace", "--kubeconfig"} {
			if !strings.Contains(out, want) {
				t.Errorf("%q: help lacks %s:\n%s", args, want, out)
			}
		}
	}
	out, _ := execute("explain", "--help")
	for _, want := range []string{"-o, --output", "--albdrain-namespace"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain --help lacks %s:\n%s", want, out)
		}
	}
}

func TestRejectsBadArguments(t *testing.T) {
	for _, args := range [][]string{{"describe", "web-1"}, {"explain"}, {"explain", "a", "b"}, {"explain", "web-1", "-o", "wide"}} {
		if _, err := execute(args...); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestWrite(t *testing.T) {
	ex := explain.Explanation{Namespace: "shop", Name: "web-1"}
	for _, tt := range []struct{ output, want string }{
		{"json", `"namespace": "shop"`},
		{"yaml", "namespace: shop\n"},
	} {
		var b bytes.Buffer
		if err := write(&b, tt.output, ex); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("-o %s:\n%s", tt.output, cmp.Diff(tt.want, b.String()))
		}
	}
}
