package endpoint

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// FuzzHoldRequest sends arbitrary bodies, from the pod's own IP or another,
// through the whole handler: it must not panic, must answer 200 only for a
// well-formed request about the caller's own pod with a bounded deadline,
// and must answer everything else with a 4xx before reaching the hold.
func FuzzHoldRequest(f *testing.F) {
	for _, seed := range []string{
		`{"namespace":"shop","name":"web-1","uid":"uid-1","timeoutMillis":60000}`,
		`{"namespace":"shop","name":"web-1","timeoutMillis":1}`,
		`{"namespace":"shop","name":"web-1","uid":"uid-0","timeoutMillis":60000}`,
		`{"namespace":"shop","name":"web-2","timeoutMillis":60000}`,
		`{"namespace":"shop","name":"web-1","timeoutMillis":3900001}`,
		`{"namespace":"shop","name":"web-1","timeoutMillis":9223372036854775807}`,
		`{"namespace":"shop","name":"web-1","timeoutMillis":-1}`,
		`{"namespace":"shop","name":"web-1","timeoutMillis":1e3}`,
		`{"namespace":"shop","name":"web-1","timeoutMillis":1000} {}`,
		`{"namespace":"shop","name":"web-1","timeoutMillis":1000,"extra":[1,2,3]}`,
		`{"Namespace":"shop","NAME":"web-1","timeoutmillis":1000}`,
		`null`, `[]`, `"x"`, ``, "\xff\xfe", `{"namespace":"\u0000"}`,
	} {
		f.Add([]byte(seed), true)
		f.Add([]byte(seed), false)
	}
	h := newHolder()
	h.calls = make(chan time.Time, 1)
	var s *Server
	f.Fuzz(func(t *testing.T, body []byte, own bool) {
		if s == nil {
			s = newServer(t, h, 10)
		}
		req := httptest.NewRequest(http.MethodPost, contract.HoldPath, bytes.NewReader(body))
		req.RemoteAddr = "127.0.4.2:40000"
		if own {
			req.RemoteAddr = podIP + ":40000"
		}
		w := httptest.NewRecorder()
		refused := totalRefusals(s)
		before := time.Now()
		s.ServeHTTP(w, req)
		after := time.Now()
		// Every refusal is counted once, and nothing else is.
		want := 1.0
		if w.Code == http.StatusOK {
			want = 0
		}
		if n := totalRefusals(s) - refused; n != want {
			t.Fatalf("status %d counted %v refusals, want %v", w.Code, n, want)
		}

		var requested time.Time
		held := false
		select {
		case requested = <-h.calls:
			held = true
		default:
		}
		switch code := w.Code; {
		case code == http.StatusOK:
			if !held || !own {
				t.Fatalf("200 without a hold of the caller's own pod (held %v, own %v)", held, own)
			}
			if requested.Before(before) || requested.After(after.Add(contract.MaxHoldTimeout)) {
				t.Fatalf("requested deadline %v outside (now, now+%v]", requested, contract.MaxHoldTimeout)
			}
		case code >= 400 && code < 500:
			if held {
				t.Fatalf("status %d, yet the holder was called", code)
			}
		default:
			t.Fatalf("status %d: want 200 or a 4xx", code)
		}
	})
}

func totalRefusals(s *Server) float64 {
	var n float64
	for _, c := range refusals(s) {
		n += c
	}
	return n
}
