package sbom

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// goOut runs the go command in the tools module and returns its output.
func goOut(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestBuild describes a binary of the tools module (the image builder, which
// links go-containerregistry) from the module list the toolchain embedded,
// and checks it against what the go command says of the same module.
func TestBuild(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "image")
	goOut(t, "build", "-o", exe, "./cmd/image")
	const dep = "github.com/google/go-containerregistry"
	want := []string{
		"pkg:golang/" + dep + "@" + goOut(t, "list", "-m", "-f", "{{.Version}}", dep),
		"pkg:golang/stdlib@" + strings.TrimPrefix(runtime.Version(), "go"),
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	doc, err := Build("sbom-test", created, Binary{Name: "image linux", Path: exe})
	if err != nil {
		t.Fatal(err)
	}
	purls := map[string]bool{}
	for _, p := range doc.Packages {
		for _, r := range p.ExternalRefs {
			purls[r.ReferenceLocator] = true
		}
	}
	for _, w := range want {
		if !purls[w] {
			t.Errorf("no package %s in the SBOM", w)
		}
	}
	got := struct{ Version, Created, First, Rel string }{doc.SPDXVersion, doc.CreationInfo.Created, doc.Packages[0].Name, doc.Relationships[0].Type + " " + doc.Relationships[0].Related}
	wantHead := struct{ Version, Created, First, Rel string }{"SPDX-2.3", "2026-01-02T03:04:05Z", "image linux", "DESCRIBES SPDXRef-Binary-0"}
	if d := cmp.Diff(wantHead, got); d != "" {
		t.Errorf("document (-want +got):\n%s", d)
	}
	ids := map[string]bool{doc.SPDXID: true}
	for _, p := range doc.Packages {
		if ids[p.SPDXID] {
			t.Errorf("SPDXID %s twice", p.SPDXID)
		}
		ids[p.SPDXID] = true
	}
	for _, r := range doc.Relationships {
		if !ids[r.Element] || !ids[r.Related] {
			t.Errorf("relationship %v names an unknown element", r)
		}
	}
	path := filepath.Join(t.TempDir(), "sbom.json")
	if err := doc.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Document
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(*doc, back); d != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", d)
	}
}

func TestBuildRefusesNonGoFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Build("x", time.Unix(0, 0), Binary{Name: "x", Path: p}); err == nil {
		t.Error("Build accepted a file that is not a Go binary")
	}
}
