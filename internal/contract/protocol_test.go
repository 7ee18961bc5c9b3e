package contract

import (
	"encoding/json"
	"testing"
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
}
