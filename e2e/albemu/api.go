package albemu

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const apiVersion = "2015-12-01"

// action is one supported operation: the parameters it takes, decoded
// before handle runs, whose result is encoded as <ActionResult>.
type action struct {
	params []param
	handle func(e *Emulator, r *request) (any, *APIError)
}

// actions are the supported operations.
var actions = map[string]action{
	"CreateTargetGroup": {append([]param{
		required("Name", func(r *request) *string { return &r.Name }),
		optional("TargetType", func(r *request) *string { return &r.TargetType }),
		required("Protocol", func(r *request) *string { return &r.Protocol }),
		intParam("Port", 1, 65535, func(r *request) *optInt { return &r.Port }),
		optional("VpcId", func(r *request) *string { return &r.VpcID }),
		keyValuesParam("Tags", func(r *request) *[]keyValue { return &r.Tags }),
	}, healthCheckParamList...), (*Emulator).apiCreateTargetGroup},
	"DescribeTargetGroups": {[]param{
		listParam("TargetGroupArns", func(r *request) *[]string { return &r.TargetGroupArns }),
		listParam("Names", func(r *request) *[]string { return &r.Names }),
		optional("LoadBalancerArn", func(r *request) *string { return &r.LoadBalancerArn }),
		intParam("PageSize", 1, maxPageSize, func(r *request) *optInt { return &r.PageSize }),
		optional("Marker", func(r *request) *string { return &r.Marker }),
	}, (*Emulator).apiDescribeTargetGroups},
	"ModifyTargetGroup": {append([]param{tgArnParam}, healthCheckParamList...), (*Emulator).apiModifyTargetGroup},
	"DescribeTags": {[]param{
		listParam("ResourceArns", func(r *request) *[]string { return &r.ResourceArns }),
	}, (*Emulator).apiDescribeTags},
	"DescribeTargetGroupAttributes": {[]param{tgArnParam}, (*Emulator).apiDescribeTargetGroupAttributes},
	"ModifyTargetGroupAttributes": {[]param{
		tgArnParam, keyValuesParam("Attributes", func(r *request) *[]keyValue { return &r.Attributes }),
	}, (*Emulator).apiModifyTargetGroupAttributes},
	"RegisterTargets":      {[]param{tgArnParam, targetsParam("Targets"), zonesParam("Targets")}, (*Emulator).apiRegisterTargets},
	"DeregisterTargets":    {[]param{tgArnParam, targetsParam("Targets")}, (*Emulator).apiDeregisterTargets},
	"DescribeTargetHealth": {[]param{tgArnParam, targetsParam("Targets")}, (*Emulator).apiDescribeTargetHealth},
}

// serveHTTP splits the API port between the Query API and the admin
// endpoint.
func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		e.serveAdmin(w, r)
		return
	}
	e.serveAPI(w, r)
}

// serveAPI answers one Query protocol call. SigV4 signatures are not
// checked. The call is logged before the answer is written, so a client
// that has its answer always finds its call in the log.
func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: time.Now(), RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent(), RequestID: newRequestID()}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	parseErr := r.ParseForm()
	form := queryForm(r.Form)
	call.Action = form.get("Action")

	faults := e.faultsFor(call.Action, call.UserAgent)
	if faults != nil && faults.Latency > 0 {
		t := time.NewTimer(faults.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	if faults != nil && faults.Outage == OutageDrop {
		e.recordCall(call)
		panic(http.ErrAbortHandler) // the server closes the connection unanswered
	}

	if handle, ok := ec2Actions[call.Action]; ok && parseErr == nil {
		e.serveEC2(w, call, form, handle, faults)
		return
	}
	result, apiErr := e.answer(call.Action, form, parseErr, faults)
	var body []byte
	if apiErr == nil {
		var err error
		if body, err = encodeResult(call.Action, call.RequestID, result); err != nil {
			apiErr = &APIError{Code: CodeInternalFailure, Message: "encode response: " + err.Error()}
		}
	}
	status := http.StatusOK
	if apiErr != nil {
		status, call.ErrorCode = apiErr.status(), apiErr.Code
		body = encodeError(apiErr, call.RequestID)
	}
	call.Status = status
	e.recordCall(call)
	writeXML(w, status, call.RequestID, body)
}

func (e *Emulator) answer(name string, form queryForm, parseErr error, faults *faultState) (any, *APIError) {
	if parseErr != nil {
		return nil, validationErrorf("Malformed request body: %v", parseErr)
	}
	if name == "" {
		return nil, &APIError{Code: CodeMissingAction, Message: "The request must contain the parameter Action"}
	}
	if err := faults.verdict(); err != nil {
		return nil, err
	}
	a, ok := actions[name]
	if !ok {
		return nil, &APIError{Code: CodeInvalidAction, Message: fmt.Sprintf("Could not find operation %s for version %s", name, apiVersion)}
	}
	req, err := decode(form, a.params)
	if err != nil {
		return nil, err
	}
	return a.handle(e, req)
}

// newRequestID makes a UUID-shaped request id like AWS's.
func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
