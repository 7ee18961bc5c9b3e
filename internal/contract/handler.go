package contract

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Handler is a container's own preStop, which the helper runs after the
// hold. Its JSON is that of the Kubernetes LifecycleHandler it is copied
// from, for the three actions a preStop can take, so a pod's rendered
// command stays readable; it is declared here so that the helper, copied
// into every pod, carries no Kubernetes API code.
type Handler struct {
	Exec    *ExecAction    `json:"exec,omitempty"`
	HTTPGet *HTTPGetAction `json:"httpGet,omitempty"`
	Sleep   *SleepAction   `json:"sleep,omitempty"`
}

// ExecAction runs a command in the container, without a shell.
type ExecAction struct {
	Command []string `json:"command,omitempty"`
}

// HTTPGetAction sends a GET to the pod (or Host).
type HTTPGetAction struct {
	Path   string `json:"path,omitempty"`
	Port   Port   `json:"port"`
	Host   string `json:"host,omitempty"`
	Scheme string `json:"scheme,omitempty"`
	// HTTPHeaders are sent with the request.
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

// HTTPHeader is one request header.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// SleepAction sleeps.
type SleepAction struct {
	Seconds int64 `json:"seconds"`
}

// Port is a port number, or a port name the webhook could not resolve (which
// the helper then refuses). It reads and writes JSON like Kubernetes'
// IntOrString: a number or a string.
type Port string

// MarshalJSON writes a number when the port is one in its plain spelling,
// and a string otherwise, so that what is read back is what was written.
func (p Port) MarshalJSON() ([]byte, error) {
	if n, err := strconv.ParseUint(string(p), 10, 16); err == nil && strconv.FormatUint(n, 10) == string(p) {
		return []byte(p), nil
	}
	return json.Marshal(string(p))
}

// UnmarshalJSON accepts a number or a string.
func (p *Port) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*p = Port(strconv.FormatInt(n, 10))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("port: want a number or a name, got %s", b)
	}
	*p = Port(s)
	return nil
}

// Number is the port as a number, if it is one in 1-65535.
func (p Port) Number() (int, bool) {
	n, err := strconv.ParseUint(string(p), 10, 16)
	return int(n), err == nil && n > 0
}
