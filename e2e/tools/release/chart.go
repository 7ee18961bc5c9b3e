package release

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"sigs.k8s.io/yaml"

	"github.com/albdrain/albdrain/e2e/helmchart"
)

// Pin is what a packaged chart installs by default: albdrain's image by
// digest and the helper image by full reference.
type Pin struct {
	Repository, Tag, Digest string
	HelperImage             string
}

// PackageChart writes the chart, as `helm package` does, into outDir with the
// version and appVersion version and its default values pinned to the
// images of pin, and returns the archive's path. The values file keeps its
// comments: only the pinned lines are replaced, and the result is checked
// to parse to exactly the intended values.
func PackageChart(outDir, version string, pin Pin) (string, error) {
	dir, err := helmchart.Dir()
	if err != nil {
		return "", err
	}
	chrt, err := loader.Load(dir)
	if err != nil {
		return "", err
	}
	chrt.Metadata.Version, chrt.Metadata.AppVersion = version, version
	var raw []byte
	for _, f := range chrt.Raw {
		if f.Name == chartutil.ValuesfileName {
			f.Data, err = pinValues(f.Data, pin)
			if err != nil {
				return "", err
			}
			raw = f.Data
		}
	}
	if raw == nil {
		return "", fmt.Errorf("chart %s has no %s", dir, chartutil.ValuesfileName)
	}
	if err := yaml.Unmarshal(raw, &chrt.Values); err != nil {
		return "", err
	}
	return chartutil.Save(chrt, outDir)
}

// pinValues replaces, in the values file text, the values of image.repository,
// image.tag, image.digest and hold.helperImage.
func pinValues(text []byte, pin Pin) ([]byte, error) {
	want := map[string]string{
		"image.repository": pin.Repository,
		"image.tag":        pin.Tag,
		"image.digest":     pin.Digest,
		"hold.helperImage": pin.HelperImage,
	}
	lines := strings.Split(string(text), "\n")
	var block string
	done := map[string]bool{}
	for i, l := range lines {
		if l != "" && l[0] != ' ' && l[0] != '#' {
			block = strings.TrimSuffix(strings.Fields(l)[0], ":")
			continue
		}
		key, _, ok := strings.Cut(strings.TrimPrefix(l, "  "), ":")
		if !ok || !strings.HasPrefix(l, "  ") || strings.HasPrefix(key, " ") || strings.HasPrefix(key, "#") {
			continue
		}
		if v, ok := want[block+"."+key]; ok {
			lines[i] = "  " + key + ": " + strconv.Quote(v)
			done[block+"."+key] = true
		}
	}
	out := []byte(strings.Join(lines, "\n"))
	var got struct {
		Image struct{ Repository, Tag, Digest string }
		Hold  struct {
			HelperImage string `json:"helperImage"`
		}
	}
	if err := yaml.Unmarshal(out, &got); err != nil {
		return nil, fmt.Errorf("pinned values: %w", err)
	}
	if len(done) != len(want) || !reflect.DeepEqual(pin, Pin{got.Image.Repository, got.Image.Tag, got.Image.Digest, got.Hold.HelperImage}) {
		return nil, fmt.Errorf("values.yaml: could not pin %v (pinned %v)", want, done)
	}
	return out, nil
}
