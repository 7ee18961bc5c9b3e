package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// defaultVolumeRefresh is how often projected volumes are rewritten when
// Options leave it unset. A real kubelet takes up to about a minute; this
// is shorter so tests wait less, yet still a lag a helper must live with.
const defaultVolumeRefresh = 2 * time.Second

// podVolumes are a pod's projected volumes, written to host directories as
// the kubelet writes them into the pod: ServiceAccount tokens (requested
// from the apiserver bound to the pod, renewed at 80% of their lifetime)
// and ConfigMaps, rewritten every refresh so a changed ConfigMap or a
// renewed token reaches the running pod. Containers here have no
// filesystem of their own, so an environment value naming a path inside a
// mounted projected volume is given as the host path (hostPath); that is
// the stand-in's only difference from a container's view.
type podVolumes struct {
	k   *Kubelet
	pod *corev1.Pod
	dir string

	mu     sync.Mutex
	tokens map[string]time.Time // file written -> when to renew it
}

// mountVolumes writes pod's projected volumes once; refresh keeps them
// current.
func (k *Kubelet) mountVolumes(pod *corev1.Pod) (*podVolumes, error) {
	v := &podVolumes{k: k, pod: pod, dir: filepath.Join(k.volDir, string(pod.UID)), tokens: map[string]time.Time{}}
	if err := v.write(); err != nil {
		return nil, err
	}
	return v, nil
}

// refresh rewrites the volumes every Options.VolumeRefresh until ctx ends,
// then removes them.
func (v *podVolumes) refresh(ctx context.Context) {
	defer os.RemoveAll(v.dir)
	t := time.NewTicker(v.k.opts.VolumeRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := v.write(); err != nil {
			v.k.opts.Log.Info("refreshing projected volumes", "pod", v.pod.Namespace+"/"+v.pod.Name, "err", err)
		}
	}
}

// write writes every projected volume.
func (v *podVolumes) write() error {
	for _, vol := range v.pod.Spec.Volumes {
		if vol.Projected == nil {
			continue
		}
		dir := filepath.Join(v.dir, vol.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		for _, src := range vol.Projected.Sources {
			var err error
			switch {
			case src.ServiceAccountToken != nil:
				err = v.writeToken(dir, src.ServiceAccountToken)
			case src.ConfigMap != nil:
				err = v.writeConfigMap(dir, src.ConfigMap)
			default:
				err = errors.New("only serviceAccountToken and configMap sources are supported")
			}
			if err != nil {
				return fmt.Errorf("volume %s: %w", vol.Name, err)
			}
		}
	}
	return nil
}

// writeToken requests a token bound to the pod, as the kubelet does, when
// the one written is due for renewal.
func (v *podVolumes) writeToken(dir string, p *corev1.ServiceAccountTokenProjection) error {
	path := filepath.Join(dir, p.Path)
	v.mu.Lock()
	due := v.tokens[path]
	v.mu.Unlock()
	if time.Now().Before(due) {
		return nil
	}
	sa := v.pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	ttl := ptr.Deref(p.ExpirationSeconds, 3600)
	req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences:         []string{p.Audience},
		ExpirationSeconds: &ttl,
		BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: v.pod.Name, UID: v.pod.UID},
	}}
	if p.Audience == "" {
		req.Spec.Audiences = nil
	}
	tr, err := v.k.cs.CoreV1().ServiceAccounts(v.pod.Namespace).CreateToken(v.k.ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token of service account %s: %w", sa, err)
	}
	if err := writeAtomic(path, tr.Status.Token); err != nil {
		return err
	}
	v.mu.Lock()
	v.tokens[path] = time.Now().Add(time.Duration(ttl) * time.Second * 8 / 10)
	v.mu.Unlock()
	return nil
}

// writeConfigMap writes the ConfigMap's keys (or the items chosen); an
// optional ConfigMap that does not exist writes nothing.
func (v *podVolumes) writeConfigMap(dir string, p *corev1.ConfigMapProjection) error {
	cm, err := v.k.cs.CoreV1().ConfigMaps(v.pod.Namespace).Get(v.k.ctx, p.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && ptr.Deref(p.Optional, false) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("configMap %s: %w", p.Name, err)
	}
	items := p.Items
	if len(items) == 0 {
		for key := range cm.Data {
			items = append(items, corev1.KeyToPath{Key: key, Path: key})
		}
	}
	for _, it := range items {
		data, ok := cm.Data[it.Key]
		if !ok {
			continue
		}
		if err := writeAtomic(filepath.Join(dir, it.Path), data); err != nil {
			return err
		}
	}
	return nil
}

// hostPath maps a container path under one of c's projected volume mounts
// to the file's host path; other values are returned as they are.
func (v *podVolumes) hostPath(c corev1.Container, value string) string {
	for _, m := range c.VolumeMounts {
		if !v.projected(m.Name) {
			continue
		}
		if rest, ok := strings.CutPrefix(value, m.MountPath); ok && (rest == "" || strings.HasPrefix(rest, "/")) {
			return filepath.Join(v.dir, m.Name) + rest
		}
	}
	return value
}

func (v *podVolumes) projected(name string) bool {
	for _, vol := range v.pod.Spec.Volumes {
		if vol.Name == name {
			return vol.Projected != nil
		}
	}
	return false
}

// writeAtomic replaces path, so a reader sees the old file or the new one.
func writeAtomic(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
