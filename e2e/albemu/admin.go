package albemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// adminPrefix is where the admin endpoint lives on the API port. It is for
// processes that cannot call the Go API, such as the standalone emulator:
//
//	GET    /_emu/faults    current faults as FaultsDoc JSON
//	PUT    /_emu/faults    replace all faults (POST works too)
//	DELETE /_emu/faults    clear faults
//	GET    /_emu/calls     the call log; DELETE empties it
//	GET    /_emu/requests  the request log; DELETE empties it
const adminPrefix = "/_emu/"

// FaultsDoc is the admin endpoint's JSON form of the fault settings.
type FaultsDoc struct {
	All     FaultsJSON            `json:"all"`
	Actions map[string]FaultsJSON `json:"actions,omitempty"`
}

// FaultsJSON is Faults with a JSON-friendly latency ("250ms") and outage
// ("", "unavailable" or "drop").
type FaultsJSON struct {
	ThrottleFraction float64 `json:"throttleFraction,omitempty"`
	RatePerSecond    float64 `json:"ratePerSecond,omitempty"`
	Burst            int     `json:"burst,omitempty"`
	ErrorFraction    float64 `json:"errorFraction,omitempty"`
	ErrorCode        string  `json:"errorCode,omitempty"`
	Latency          string  `json:"latency,omitempty"`
	Outage           string  `json:"outage,omitempty"`
}

var outageNames = map[Outage]string{OutageNone: "", OutageUnavailable: "unavailable", OutageDrop: "drop"}

func (j FaultsJSON) faults() (Faults, error) {
	f := Faults{
		ThrottleFraction: j.ThrottleFraction, RatePerSecond: j.RatePerSecond, Burst: j.Burst,
		ErrorFraction: j.ErrorFraction, ErrorCode: j.ErrorCode,
	}
	if j.Latency != "" {
		d, err := time.ParseDuration(j.Latency)
		if err != nil {
			return Faults{}, fmt.Errorf("latency: %w", err)
		}
		f.Latency = d
	}
	for o, name := range outageNames {
		if name == j.Outage {
			f.Outage = o
			return f, nil
		}
	}
	return Faults{}, fmt.Errorf("outage %q: want \"\", \"unavailable\" or \"drop\"", j.Outage)
}

func faultsToJSON(f Faults) FaultsJSON {
	j := FaultsJSON{
		ThrottleFraction: f.ThrottleFraction, RatePerSecond: f.RatePerSecond, Burst: f.Burst,
		ErrorFraction: f.ErrorFraction, ErrorCode: f.ErrorCode, Outage: outageNames[f.Outage],
	}
	if f.Latency > 0 {
		j.Latency = f.Latency.String()
	}
	return j
}

func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case adminPrefix + "faults":
		e.adminFaults(w, r)
	case adminPrefix + "calls":
		adminLog(w, r, e.Calls, e.ResetCalls)
	case adminPrefix + "requests":
		adminLog(w, r, e.Requests, e.ResetRequests)
	default:
		http.NotFound(w, r)
	}
}

func (e *Emulator) adminFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, e.faultsDoc())
	case http.MethodPut, http.MethodPost:
		var doc FaultsDoc
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&doc); err != nil {
			http.Error(w, "decode faults: "+err.Error(), http.StatusBadRequest)
			return
		}
		cfg, err := doc.config()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		e.faults = cfg
		e.mu.Unlock()
		writeJSON(w, e.faultsDoc())
	case http.MethodDelete:
		e.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (doc FaultsDoc) config() (faultConfig, error) {
	all, err := doc.All.faults()
	if err != nil {
		return faultConfig{}, err
	}
	cfg := faultConfig{all: newFaultState(all), perAction: map[string]*faultState{}}
	for action, j := range doc.Actions {
		f, err := j.faults()
		if err != nil {
			return faultConfig{}, fmt.Errorf("%s: %w", action, err)
		}
		cfg.perAction[action] = newFaultState(f)
	}
	return cfg, nil
}

func (e *Emulator) faultsDoc() FaultsDoc {
	e.mu.Lock()
	defer e.mu.Unlock()
	var doc FaultsDoc
	if e.faults.all != nil {
		doc.All = faultsToJSON(e.faults.all.Faults)
	}
	for action, s := range e.faults.perAction {
		if doc.Actions == nil {
			doc.Actions = map[string]FaultsJSON{}
		}
		doc.Actions[action] = faultsToJSON(s.Faults)
	}
	return doc
}

func adminLog[T any](w http.ResponseWriter, r *http.Request, get func() []T, reset func()) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, get())
	case http.MethodDelete:
		reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client going away is its own problem
}
