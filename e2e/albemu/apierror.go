package albemu

import (
	"fmt"
	"net/http"
)

// Error codes the emulator answers with, as AWS spells them.
const (
	CodeTargetGroupNotFound      = "TargetGroupNotFound"
	CodeDuplicateTargetGroupName = "DuplicateTargetGroupName"
	CodeValidationError          = "ValidationError"
	CodeInvalidTarget            = "InvalidTarget"
	CodeTooManyTargets           = "TooManyTargets"
	CodeThrottling               = "Throttling"
	CodeInternalFailure          = "InternalFailure"
	CodeServiceUnavailable       = "ServiceUnavailable"
	CodeInvalidAction            = "InvalidAction"
	CodeMissingAction            = "MissingAction"
	// CodeAccessDenied is the answer to a call the caller's IAM policy does
	// not allow (EC2 calls it CodeUnauthorizedOperation).
	CodeAccessDenied = "AccessDenied"
)

// APIError is an ELBv2 error. The API answers with it in AWS's XML error
// shape, and the Go API returns it, so callers can check Code either way.
type APIError struct {
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// ErrorCode matches the SDK's smithy.APIError, so one check serves errors
// from the Go API and from SDK calls alike.
func (e *APIError) ErrorCode() string { return e.Code }

// status is the HTTP status AWS uses for the code.
func (e *APIError) status() int {
	switch e.Code {
	case CodeInternalFailure:
		return http.StatusInternalServerError
	case CodeServiceUnavailable:
		return http.StatusServiceUnavailable
	case CodeAccessDenied, CodeUnauthorizedOperation:
		return http.StatusForbidden
	default:
		return http.StatusBadRequest
	}
}

// faultType is the Type element of the XML error: who is to blame.
func (e *APIError) faultType() string {
	if e.status() >= 500 {
		return "Receiver"
	}
	return "Sender"
}

func errTargetGroupNotFound() *APIError {
	return &APIError{Code: CodeTargetGroupNotFound, Message: "One or more target groups not found"}
}

func errThrottling() *APIError {
	return &APIError{Code: CodeThrottling, Message: "Rate exceeded"}
}

func validationErrorf(format string, args ...any) *APIError {
	return &APIError{Code: CodeValidationError, Message: fmt.Sprintf(format, args...)}
}

func invalidTargetf(format string, args ...any) *APIError {
	return &APIError{Code: CodeInvalidTarget, Message: fmt.Sprintf(format, args...)}
}
