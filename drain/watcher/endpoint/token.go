package endpoint

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/contract"
)

// The ServiceAccount token authenticator's extra fields naming the pod a
// token is bound to.
const (
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
)

// errNotThePod is a token the apiserver accepts that is not the named pod's.
var errNotThePod = errors.New("the token is not the pod's")

// errNoToken is a request without the token the pod was given.
var errNoToken = errors.New("a bearer token of the pod is required")

// errTokenRefused is a token the apiserver does not accept for albdrain:
// expired, of another audience, of a deleted pod, or not a token at all.
var errTokenRefused = errors.New("token not accepted for albdrain")

// Tokens verifies the pod tokens helpers send, through TokenReviews.
type Tokens struct {
	// Client creates TokenReviews (cluster-scoped create on
	// authentication.k8s.io tokenreviews).
	Client client.Writer
}

// checkToken verifies that r carries a token of pod's, when pod was given
// one: a token bound to that pod (name and UID) of its ServiceAccount, for
// albdrain's audience. A pod injected before the trust volume has none and
// passes on its source IP alone. The error is errNoToken, errTokenRefused or
// errNotThePod, or the TokenReview's own failure.
func (t Tokens) checkToken(ctx context.Context, r *http.Request, pod *corev1.Pod) error {
	if !hasToken(pod) {
		return nil
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		return errNoToken
	}
	review := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: strings.TrimSpace(raw), Audiences: []string{contract.TokenAudience}}}
	if err := t.Client.Create(ctx, review); err != nil {
		return fmt.Errorf("token review: %w", err)
	}
	st := review.Status
	if !st.Authenticated || !slices.Contains(st.Audiences, contract.TokenAudience) {
		return fmt.Errorf("%w: %s", errTokenRefused, st.Error)
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	if st.User.Username != "system:serviceaccount:"+pod.Namespace+":"+sa ||
		!slices.Equal(st.User.Extra[extraPodName], authnv1.ExtraValue{pod.Name}) ||
		!slices.Equal(st.User.Extra[extraPodUID], authnv1.ExtraValue{string(pod.UID)}) {
		return errNotThePod
	}
	return nil
}

// hasToken reports whether the webhook gave pod a token for albdrain, which
// its helper must then present.
func hasToken(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Name != contract.TrustVolumeName || v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil && s.ServiceAccountToken.Audience == contract.TokenAudience {
				return true
			}
		}
	}
	return false
}
