package webhook

import (
	"flag"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestReadinessGatesFlag: --readiness-gates=false turns gate injection off
// for the whole webhook; it is on by default.
func TestReadinessGatesFlag(t *testing.T) {
	tests := []struct {
		args []string
		want bool // NoReadinessGates
	}{
		{nil, false},
		{[]string{"--readiness-gates=false"}, true},
		{[]string{"--readiness-gates=true"}, false},
	}
	for _, tc := range tests {
		var c Config
		fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
		c.BindFlags(fs)
		if err := fs.Parse(append([]string{"--helper-image=albdrain:test", "--watcher-url=https://albdrain:8443"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		o, err := c.Options()
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tc.want, o.NoReadinessGates); d != "" {
			t.Errorf("%v: NoReadinessGates (-want +got):\n%s", tc.args, d)
		}
	}
}

// TestInitResourcesFlags: the init container's resources come from flags,
// requests equal to limits by default (any maxLimitRequestRatio passes);
// bad quantities and requests above limits are refused.
func TestInitResourcesFlags(t *testing.T) {
	q := resource.MustParse
	tests := []struct {
		name    string
		args    []string
		want    corev1.ResourceRequirements
		wantErr string
	}{
		{name: "defaults", want: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("64Mi")},
		}},
		{name: "no CPU limit", args: []string{"--init-cpu-limit=", "--init-memory-request=128Mi", "--init-memory-limit=128Mi"}, want: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: q("128Mi")},
		}},
		{name: "none", args: []string{"--init-cpu-request=", "--init-cpu-limit=", "--init-memory-request=", "--init-memory-limit="}},
		{name: "not a quantity", args: []string{"--init-memory-limit=lots"}, wantErr: `--init-memory-limit "lots": want a positive quantity`},
		{name: "zero", args: []string{"--init-cpu-request=0"}, wantErr: `--init-cpu-request "0": want a positive quantity`},
		{name: "request above limit", args: []string{"--init-cpu-request=200m"}, wantErr: "--init-cpu-request 200m is above --init-cpu-limit 100m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
			c.BindFlags(fs)
			if err := fs.Parse(append([]string{"--helper-image=albdrain:test", "--watcher-url=https://albdrain:8443"}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			o, err := c.Options()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, o.InitResources); d != "" {
				t.Errorf("init resources (-want +got):\n%s", d)
			}
		})
	}
}
