// Package helmchart renders albdrain's Helm chart (charts/albdrain) with the
// Helm SDK, as `helm template` does, and reads what the harness needs from
// the result: the objects, the manager's command line, the webhook
// registration and the RBAC. The chart is the one source of albdrain's
// registration: the chart tests, the local cluster and the benchmarks all
// install what it renders.
package helmchart

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ReleaseName is the release name the harness installs under.
const ReleaseName = "albdrain"

// KubeVersion is the Kubernetes version charts are rendered for: the one
// the harness runs.
var KubeVersion = &common.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}

// Dir finds charts/albdrain from the working directory or one of its
// parents, so that tests (run in their package's directory) and the demo
// and bench (run from the repository root) render the same chart.
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "charts", "albdrain")
		if _, err := os.Stat(filepath.Join(p, "Chart.yaml")); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no charts/albdrain above %s", wd)
		}
	}
}

// ParseValues reads values written as YAML.
func ParseValues(s string) (map[string]any, error) {
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &vals); err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	return vals, nil
}

// Manifest is a rendered chart.
type Manifest struct {
	// Text is the manifest as `helm template` prints it.
	Text string
	// Objects are its objects, in Helm's install order, with numbers as
	// int64 the way the apiserver's clients see them.
	Objects []*unstructured.Unstructured
}

// Render renders the chart in namespace with vals, checked against the
// values schema.
func Render(namespace string, vals map[string]any) (*Manifest, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	return RenderChart(dir, namespace, vals)
}

// RenderChart is Render for the chart at path: a directory or a packaged archive.
func RenderChart(path, namespace string, vals map[string]any) (*Manifest, error) {
	chrt, err := loader.Load(path)
	if err != nil {
		return nil, err
	}
	inst := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler)))
	inst.DryRunStrategy, inst.Replace = action.DryRunClient, true
	inst.ReleaseName, inst.Namespace = ReleaseName, namespace
	inst.KubeVersion = KubeVersion
	r, err := inst.Run(chrt, vals)
	if err != nil {
		return nil, err
	}
	rel, ok := r.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("helm returned a %T, not a release", r)
	}
	objs, err := Decode(rel.Manifest)
	if err != nil {
		return nil, err
	}
	return &Manifest{Text: rel.Manifest, Objects: objs}, nil
}

// Decode reads the objects of a rendered manifest.
func Decode(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode rendered manifest: %w", err)
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("decode rendered object: %w", err)
		}
		objs = append(objs, u)
	}
}

// Find returns the object of that kind and name, or nil.
func (m *Manifest) Find(kind, name string) *unstructured.Unstructured {
	for _, o := range m.Objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}
