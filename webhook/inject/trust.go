package inject

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/contract"
)

// addTrust gives the pod, and every container the helper holds (native
// sidecars included), the trust volume: what the helper needs to be trusted
// and to trust.
//
//   - A ServiceAccount token bound to the pod, for albdrain's audience only,
//     which the watcher checks with a TokenReview. It works whether or not
//     the pod mounts its ServiceAccount's own token, and names the pod's
//     ServiceAccount. A pod that names none (only where the apiserver runs
//     without the ServiceAccount admission plugin, which otherwise sets
//     "default" before any webhook) gets no token, since the apiserver
//     refuses one without a ServiceAccount: its hold is granted on its
//     source IP alone, as for a pod injected before tokens.
//   - The watcher's CA bundle, from the ConfigMap albdrain keeps in the pod's
//     namespace (see certs/cabundle). It is optional so that a pod admitted
//     before albdrain has written it in a new namespace still starts; the
//     kubelet adds it once it exists.
//
// The kubelet renews both while the pod runs, which is why they are files
// and not environment variables: a CA changed after the pod started reaches
// it, and so does a fresh token.
func addTrust(spec *corev1.PodSpec, o Options) {
	var sources []corev1.VolumeProjection
	if spec.ServiceAccountName != "" {
		sources = append(sources, corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience:          contract.TokenAudience,
			ExpirationSeconds: ptr.To[int64](contract.TokenExpirationSeconds),
			Path:              contract.TokenFile,
		}})
	}
	if o.CABundle {
		sources = append(sources, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: contract.CABundleConfigMap},
			Items:                []corev1.KeyToPath{{Key: contract.CABundleFile, Path: contract.CABundleFile}},
			Optional:             ptr.To(true),
		}})
	}
	if len(sources) == 0 {
		return
	}
	if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == contract.TrustVolumeName }) {
		spec.Volumes = append(spec.Volumes, corev1.Volume{
			Name:         contract.TrustVolumeName,
			VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: sources}},
		})
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			c := &cs[i]
			if !isHelperHook(c) {
				continue
			}
			addMount(c, corev1.VolumeMount{Name: contract.TrustVolumeName, MountPath: contract.TrustMountPath, ReadOnly: true})
			addEnv(c, []corev1.EnvVar{{Name: contract.EnvTrustDir, Value: contract.TrustMountPath}})
		}
	}
}
