package inject

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// trustView is what a mutated pod gives the helper to be trusted and to
// trust: the trust volume's sources, and which containers mount it.
type trustView struct {
	Sources []string
	Mounted []string
	TrustIn []string // containers told where the trust volume is
	Legacy  []string // containers with a CA copied into their environment
}

func trustOf(pod *corev1.Pod) trustView {
	var v trustView
	for _, vol := range pod.Spec.Volumes {
		if vol.Name != contract.TrustVolumeName || vol.Projected == nil {
			continue
		}
		for _, s := range vol.Projected.Sources {
			switch {
			case s.ServiceAccountToken != nil:
				v.Sources = append(v.Sources, "token "+s.ServiceAccountToken.Audience+" "+s.ServiceAccountToken.Path)
			case s.ConfigMap != nil:
				v.Sources = append(v.Sources, "configMap "+s.ConfigMap.Name)
			}
		}
	}
	for _, c := range pod.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.Name == contract.TrustVolumeName && m.MountPath == contract.TrustMountPath && m.ReadOnly {
				v.Mounted = append(v.Mounted, c.Name)
			}
		}
		for _, e := range c.Env {
			switch {
			case e.Name == contract.EnvTrustDir && e.Value == contract.TrustMountPath:
				v.TrustIn = append(v.TrustIn, c.Name)
			case e.Name == contract.EnvWatcherCA:
				v.Legacy = append(v.Legacy, c.Name)
			}
		}
	}
	return v
}

// podOfSA is a pod as webhooks see it once the ServiceAccount admission
// plugin has set its ServiceAccount.
func podOfSA(cs ...corev1.Container) *corev1.Pod {
	p := podWith(cs...)
	p.Spec.ServiceAccountName = "default"
	return p
}

func TestApplyTrustVolume(t *testing.T) {
	noAutomount := podWith(container("app", port("http", 8080)), container("worker"))
	noAutomount.Spec.AutomountServiceAccountToken = ptr.To(false)
	noAutomount.Spec.ServiceAccountName = "web"
	tests := []struct {
		name     string
		pod      *corev1.Pod
		caBundle bool
		want     trustView
	}{
		{
			name:     "token and CA bundle in every held container",
			pod:      podOfSA(container("app", port("http", 8080)), container("metrics", port("metrics", 9090))),
			caBundle: true,
			want:     trustView{Sources: []string{"token albdrain token", "configMap albdrain-ca.crt"}, Mounted: []string{"app"}, TrustIn: []string{"app"}},
		},
		{
			name: "no CA file: the token only, the helper trusts the system roots",
			pod:  podOfSA(container("app", port("http", 8080))),
			want: trustView{Sources: []string{"token albdrain token"}, Mounted: []string{"app"}, TrustIn: []string{"app"}},
		},
		{
			// The apiserver refuses a token projection without a
			// ServiceAccount; such a pod is known by its IP alone.
			name:     "no ServiceAccount named (no ServiceAccount admission plugin): the CA bundle only",
			pod:      podWith(container("app", port("http", 8080))),
			caBundle: true,
			want:     trustView{Sources: []string{"configMap albdrain-ca.crt"}, Mounted: []string{"app"}, TrustIn: []string{"app"}},
		},
		{
			name: "no ServiceAccount and no CA file: no trust volume",
			pod:  podWith(container("app", port("http", 8080))),
			want: trustView{},
		},
		{
			// The projected token is albdrain's own volume: it is there
			// whatever the pod says of its ServiceAccount's token.
			name:     "pod that does not mount its ServiceAccount token still gets albdrain's",
			pod:      noAutomount,
			caBundle: true,
			want:     trustView{Sources: []string{"token albdrain token", "configMap albdrain-ca.crt"}, Mounted: []string{"app"}, TrustIn: []string{"app"}},
		},
		{
			name: "sleep mode runs no helper: no trust volume",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Annotations = map[string]string{contract.ModeKey: "sleep"}
				return p
			}(),
			caBundle: true,
			want:     trustView{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			o.CABundle = tc.caBundle
			targets := []lbc.Backend{tgbTarget}
			if _, _, err := Apply(tc.pod, targets, o); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, trustOf(tc.pod)); d != "" {
				t.Errorf("trust (-want +got):\n%s", d)
			}
			again := tc.pod.DeepCopy()
			if _, _, err := Apply(again, targets, o); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.pod, again); d != "" {
				t.Errorf("second pass changed the pod (-first +second):\n%s", d)
			}
		})
	}
}
