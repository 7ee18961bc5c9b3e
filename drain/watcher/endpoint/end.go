package endpoint

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/internal/contract"
)

// serveEnd records a helper's report of how its hold ended. It takes no
// hold slot: it is one short request, checked like a hold (the caller must
// be the pod), and recording it only counts and emits an event.
func (s *Server) serveEnd(w http.ResponseWriter, r *http.Request) {
	end, status, err := readEnd(w, r)
	if err != nil {
		s.refuse(w, contract.RefusedBadRequest, "bad hold end: "+err.Error(), status)
		return
	}
	pod, logger, ok := s.callersPod(w, r, end.Namespace, end.Name, end.UID)
	if !ok {
		return
	}
	s.opts.Holder.End(log.IntoContext(r.Context(), logger), pod, end)
	w.WriteHeader(http.StatusNoContent)
}

// readEnd decodes and checks a hold's end, or says which status refuses it.
func readEnd(w http.ResponseWriter, r *http.Request) (contract.HoldEnd, int, error) {
	var end contract.HoldEnd
	if status, err := readBody(w, r, &end); err != nil {
		return end, status, err
	}
	longest := contract.MaxHoldTimeout.Milliseconds()
	switch {
	case end.Namespace == "" || end.Name == "":
		return end, http.StatusBadRequest, errors.New("namespace and name are required")
	case end.Outcome != contract.OutcomeQuiet && end.Outcome != contract.OutcomeBound:
		return end, http.StatusBadRequest, fmt.Errorf("outcome %q: want %q or %q", end.Outcome, contract.OutcomeQuiet, contract.OutcomeBound)
	case end.HeldMillis < 0 || end.HeldMillis > longest || end.QuietMillis < 0 || end.QuietMillis > longest:
		return end, http.StatusBadRequest, fmt.Errorf("heldMillis and quietMillis must be within 0 and %d", longest)
	case !slices.Contains([]string{contract.SignalSockDiag, contract.SignalProcNet, contract.SignalNone}, end.Signal):
		return end, http.StatusBadRequest, fmt.Errorf("signal %q: want %q, %q or %q", end.Signal, contract.SignalSockDiag, contract.SignalProcNet, contract.SignalNone)
	}
	return end, 0, nil
}
