package bench

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

func TestWriteJSON(t *testing.T) {
	a := &Section{Name: "webhook"}
	a.Add("handler_p99_us", 283)
	a.Compare(Comparison{What: "handler", Value: 2, Baseline: 1, Met: true})
	b := &Section{Name: "webhook"}
	b.Add("create_p99_ms_albdrain", math.NaN())
	b.Compare(Comparison{What: "create", Value: 3, Baseline: 0})
	path := t.TempDir() + "/bench.json"
	if err := (&Report{Sections: []*Section{a, b}}).WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"webhook.handler_p99_us": 283.0, "webhook.create_p99_ms_albdrain": nil,
		"targets.1.what": "handler", "targets.1.ratio": 2.0, "targets.1.met": true,
		"targets.2.what": "create", "targets.2.ratio": nil, "targets.2.met": false,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
