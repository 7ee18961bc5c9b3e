package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/explain"
)

// Rate and Burst bound the explanations all callers together get from one
// replica: each costs a TokenReview, a SubjectAccessReview and an uncached
// pod GET on the apiserver.
const (
	Rate  = 2
	Burst = 10
)

// errUnauthenticated is a missing, unknown or expired token.
var errUnauthenticated = errors.New("unauthenticated")

// errForbidden is a caller who may not get the pod.
var errForbidden = errors.New("forbidden")

// Authorizer decides whether the bearer of token may read the pod.
type Authorizer interface {
	// MayGetPod returns nil, errUnauthenticated or errForbidden, or the
	// error of the review itself.
	MayGetPod(ctx context.Context, token, namespace, name string) error
}

// Reviews authorizes callers as the apiserver would: a TokenReview
// authenticates the token, then a SubjectAccessReview asks whether its user
// may get the pod. The manager needs create on tokenreviews and
// subjectaccessreviews.
type Reviews struct {
	Client client.Client
}

// MayGetPod implements Authorizer.
func (r Reviews) MayGetPod(ctx context.Context, token, namespace, name string) error {
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}
	if err := r.Client.Create(ctx, tr); err != nil {
		return fmt.Errorf("token review: %w", err)
	}
	if !tr.Status.Authenticated {
		return errUnauthenticated
	}
	u := tr.Status.User
	extra := make(map[string]authzv1.ExtraValue, len(u.Extra))
	for k, v := range u.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: u.Username, Groups: u.Groups, UID: u.UID, Extra: extra,
		ResourceAttributes: &authzv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: namespace, Name: name},
	}}
	if err := r.Client.Create(ctx, sar); err != nil {
		return fmt.Errorf("subject access review: %w", err)
	}
	if !sar.Status.Allowed {
		return errForbidden
	}
	return nil
}

// bearer reads the token the caller repeated in TokenHeader.
func bearer(r *http.Request) string {
	v := r.Header.Get(explain.TokenHeader)
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
