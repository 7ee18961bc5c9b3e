package contract

import (
	"encoding/json"
	"testing"
	"time"
)

// The JSON names are the wire contract between helpers and watchers of
// different versions during an upgrade; renaming a field breaks holds.
func TestHoldWireFormat(t *testing.T) {
	req, err := json.Marshal(HoldRequest{Namespace: "shop", Name: "web-1", UID: "u", TimeoutMillis: 1500})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"namespace":"shop","name":"web-1","uid":"u","timeoutMillis":1500}`; string(req) != want {
		t.Errorf("request = %s, want %s", req, want)
	}
	resp, err := json.Marshal(HoldResponse{Outcome: OutcomeDrainingSettled, Message: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"outcome":"draining_settled","message":"m"}`; string(resp) != want {
		t.Errorf("response = %s, want %s", resp, want)
	}
	resp, err = json.Marshal(HoldResponse{Outcome: OutcomeDeregistering, Traffic: &Traffic{
		BoundMillis:  2000,
		Ports:        []TrafficPort{{Port: 8080, Flows: true}},
		HealthChecks: []HealthCheck{{Port: 8080, Protocol: "HTTP", Path: "/healthz", IntervalMillis: 5000}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"outcome":"deregistering","traffic":{"boundMillis":2000,"ports":[{"port":8080,"flows":true}],"healthChecks":[{"port":8080,"protocol":"HTTP","path":"/healthz","intervalMillis":5000}]}}`; string(resp) != want {
		t.Errorf("response = %s, want %s", resp, want)
	}
	end, err := json.Marshal(HoldEnd{Namespace: "shop", Name: "web-1", UID: "u", Outcome: OutcomeQuiet, HeldMillis: 4000, QuietMillis: 1000, Signal: SignalSockDiag})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"namespace":"shop","name":"web-1","uid":"u","outcome":"quiet","heldMillis":4000,"quietMillis":1000,"signal":"sock_diag"}`; string(end) != want {
		t.Errorf("end = %s, want %s", end, want)
	}
}

// A helper of the previous version reported a hold's end without Quiet:
// the report reads and writes back byte for byte, and a new helper's
// report differs from it only by the quiet flag, which earlier watchers
// ignore.
func TestHoldEndWireForm(t *testing.T) {
	const old = `{"namespace":"shop","name":"web-1","uid":"u","outcome":"quiet","heldMillis":4000,"quietMillis":1000,"signal":"sock_diag"}`
	var end HoldEnd
	if err := json.Unmarshal([]byte(old), &end); err != nil {
		t.Fatal(err)
	}
	want := HoldEnd{Namespace: "shop", Name: "web-1", UID: "u", Outcome: OutcomeQuiet, HeldMillis: 4000, QuietMillis: 1000, Signal: SignalSockDiag}
	if end != want {
		t.Errorf("decoded %+v, want %+v", end, want)
	}
	again, err := json.Marshal(end)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != old {
		t.Errorf("encoded back as %s, want %s", again, old)
	}
	end.Quiet = true
	now, err := json.Marshal(end)
	if err != nil {
		t.Fatal(err)
	}
	if want := old[:len(old)-1] + `,"quiet":true}`; string(now) != want {
		t.Errorf("new report %s, want %s", now, want)
	}
	if end.Held() != 4*time.Second || end.QuietPeriod() != time.Second {
		t.Errorf("held %v, quiet period %v; want 4s and 1s", end.Held(), end.QuietPeriod())
	}
}
