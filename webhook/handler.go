package webhook

import (
	"context"
	"errors"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/albdrain/albdrain/webhook/inject"
)

// PatchHandler answers a pod review as admission.WithDefaulter does, with
// the JSON patch inject.Patch builds from the pod before and after the
// defaulter rather than a diff of the whole pod's JSON before and after:
// about a fifth of the allocations per review. The defaulter stays the
// one place that decides what a pod gets.
type PatchHandler struct {
	defaulter admission.Defaulter[*corev1.Pod]
	decoder   admission.Decoder
	scheme    *runtime.Scheme
}

// NewPatchHandler serves d's mutation; scheme decodes the pods.
func NewPatchHandler(scheme *runtime.Scheme, d admission.Defaulter[*corev1.Pod]) *PatchHandler {
	return &PatchHandler{defaulter: d, decoder: admission.NewDecoder(scheme), scheme: scheme}
}

var _ admission.Handler = (*PatchHandler)(nil)

// Handle implements admission.Handler.
func (h *PatchHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation == admissionv1.Delete {
		return admission.Allowed("")
	}
	ctx = admission.NewContextWithRequest(ctx, req)
	before := &corev1.Pod{}
	if err := h.decoder.Decode(req, before); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	after := before.DeepCopy()
	if err := h.defaulter.Default(ctx, after); err != nil {
		if s := apierrors.APIStatus(nil); errors.As(err, &s) {
			return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Result: new(s.Status())}}
		}
		return admission.Denied(err.Error())
	}
	ops, err := inject.Patch(before, after)
	if err != nil {
		// A mutation Patch does not know yet: the framework's whole-pod
		// diff still gets it right, at its cost.
		ctrl.LoggerFrom(ctx).Error(err, "building the pod's patch from its fields; diffing the whole pod instead", "namespace", req.Namespace)
		return admission.WithDefaulter[*corev1.Pod](h.scheme, result{after}).Handle(ctx, req)
	}
	if len(ops) == 0 {
		return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true}}
	}
	return admission.Response{Patches: ops, AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true, PatchType: new(admissionv1.PatchTypeJSONPatch)}}
}

// result is a defaulter whose mutation is already made: it hands the
// framework the pod the real defaulter left.
type result struct{ pod *corev1.Pod }

func (r result) Default(_ context.Context, pod *corev1.Pod) error {
	*pod = *r.pod
	return nil
}
