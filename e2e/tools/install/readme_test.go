package install

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCommands(t *testing.T) {
	const doc = "# albdrain\n\n## Install\n\nText.\n\n```sh\n" +
		"REGISTRY=ghcr.io/albdrain   # a comment\n" +
		"helm install x oci://$REGISTRY/charts/x \\\n  --set a.b\\.c=1 --set 'd.e\\.f=2' --set \"g\\.h=$REGISTRY\"\n" +
		"```\n\n```yaml\nnot: run\n```\n\n### A step\n\n```sh\necho \"it's\" '#not a comment'\n```\n\n## Next\n\n```sh\nnot run\n```\n"
	got, err := Commands(doc, "## Install", map[string]string{"REGISTRY": "127.0.0.1:5000/a"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"REGISTRY=ghcr.io/albdrain"},
		{"helm", "install", "x", "oci://127.0.0.1:5000/a/charts/x", "--set", "a.b.c=1", "--set", `d.e\.f=2`, "--set", `g\.h=127.0.0.1:5000/a`},
		{"echo", "it's", "#not a comment"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("commands (-want +got):\n%s", d)
	}
	for _, bad := range []string{"## Install\n```sh\necho $UNSET\n```\n", "## Install\n```sh\necho 'open\n```\n"} {
		if _, err := Commands("\n"+bad, "## Install", nil); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := Commands(doc, "## Missing", nil); err == nil {
		t.Error("a missing section: no error")
	}
}
