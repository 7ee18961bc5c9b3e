package release

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/albdrain/albdrain/e2e/helmchart"
)

// TestPackagePinsImages packages the chart as the release does and installs
// the archive with no values: the manager and the injected helper must be
// the pinned images, and the values file must keep its comments.
func TestPackagePinsImages(t *testing.T) {
	pin := Pin{
		Repository:  "registry.test/albdrain/albdrain",
		Tag:         "1.2.3",
		Digest:      "sha256:" + strings.Repeat("a", 64),
		HelperImage: "registry.test/albdrain/albdrain-hold@sha256:" + strings.Repeat("b", 64),
	}
	path, err := PackageChart(t.TempDir(), "1.2.3", pin)
	if err != nil {
		t.Fatal(err)
	}
	chrt, err := loader.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := chrt.Metadata.Version + " " + chrt.Metadata.AppVersion; got != "1.2.3 1.2.3" {
		t.Errorf("packaged version and appVersion %q", got)
	}
	for _, f := range chrt.Raw {
		if f.Name == "values.yaml" && !strings.Contains(string(f.Data), "# sha256:... pins the image") {
			t.Error("the packaged values.yaml lost its comments")
		}
	}
	m, err := helmchart.RenderChart(path, "albdrain-system", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	dep := m.Find("Deployment", helmchart.ReleaseName)
	if dep == nil {
		t.Fatal("no Deployment")
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	args, err := m.ManagerArgs()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{"image " + containers[0].(map[string]any)["image"].(string): true}
	for _, a := range args {
		if strings.HasPrefix(a, "--helper-image=") {
			got[a] = true
		}
	}
	want := map[string]bool{
		"image " + pin.Repository + "@" + pin.Digest: true,
		"--helper-image=" + pin.HelperImage:          true,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("packaged chart installs (-want +got):\n%s", d)
	}
}

func TestPinValuesRefusesUnknownLayout(t *testing.T) {
	if _, err := pinValues([]byte("image:\n  repository: x\n"), Pin{Repository: "a", Tag: "b", Digest: "c", HelperImage: "d"}); err == nil {
		t.Error("pinValues accepted values without image.tag, image.digest and hold.helperImage")
	}
}
