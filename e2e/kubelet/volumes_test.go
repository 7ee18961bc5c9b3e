package kubelet

import (
	"context"
	"os"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestProjectedVolumes: a pod's projected token is bound to the pod for
// its audience, a ConfigMap changed while the pod runs reaches it, and an
// environment value naming a file in the volume reads that file.
func TestProjectedVolumes(t *testing.T) {
	env, k := startKubelet(t, map[string]string{"/bin/sh": "/bin/sh"})
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "trust"}, Data: map[string]string{"ca.crt": "first"}}
	if err := env.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "projected", Namespace: "default"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			Containers: []corev1.Container{{
				Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				VolumeMounts: []corev1.VolumeMount{{Name: "trust", MountPath: "/var/run/trust", ReadOnly: true}},
				Env:          []corev1.EnvVar{{Name: "TRUST", Value: "/var/run/trust"}},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{
					"/bin/sh", "-c", `echo "ca=$(cat $TRUST/ca.crt) token=$(cat $TRUST/token) missing=$(cat $TRUST/absent 2>/dev/null)"`,
				}}}},
			}},
			Volumes: []corev1.Volume{{Name: "trust", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "albdrain", ExpirationSeconds: ptr.To[int64](600), Path: "token"}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "trust"}}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}},
			}}}}},
		},
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod running", func(context.Context) (bool, error) { return podReady(getPod(t, env, "projected")), nil })
	cm.Data["ca.crt"] = "renewed"
	if err := env.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	// The kubelet's refresh is periodic: the pod sees the change once it has
	// rewritten the volume, which this waits for through the pod's own view.
	hostDir := k.volDir + "/" + string(getPod(t, env, "projected").UID) + "/trust"
	waitFor(t, "the changed ConfigMap in the volume", func(context.Context) (bool, error) {
		b, err := os.ReadFile(hostDir + "/ca.crt")
		return err == nil && string(b) == "renewed", nil
	})
	b, err := os.ReadFile(hostDir + "/token")
	if err != nil {
		t.Fatal(err)
	}
	token := string(b)
	review := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{"albdrain"}}}
	if err := env.Client.Create(ctx, review); err != nil {
		t.Fatal(err)
	}
	st := review.Status
	if !st.Authenticated || st.User.Username != "system:serviceaccount:default:web" || strings.Join(st.User.Extra["authentication.kubernetes.io/pod-name"], ",") != "projected" {
		t.Errorf("token review = %+v, want the pod's token for albdrain", st)
	}
	if err := env.Client.Delete(ctx, getPod(t, env, "projected")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod removed", func(context.Context) (bool, error) { return len(k.Terminations()) == 1, nil })
	h := k.Terminations()[0].Hooks[0]
	if want := "ca=renewed token=" + token + " missing="; h.Err != "" || strings.TrimSpace(h.Output) != want {
		t.Errorf("hook = %+v, want output %q", h, want)
	}
}
