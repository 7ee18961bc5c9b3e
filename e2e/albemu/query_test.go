package albemu

import (
	"net/url"
	"reflect"
	"testing"
	"time"
)

func TestQueryFormTargets(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    []Target
		wantErr string
	}{
		{
			name: "ports optional, ordered by index not position",
			raw:  "Targets.member.2.Id=10.0.0.2&Targets.member.2.Port=80&Targets.member.1.Id=10.0.0.1&Targets.member.10.Id=10.0.0.10",
			want: []Target{{ID: "10.0.0.1"}, {ID: "10.0.0.2", Port: 80}, {ID: "10.0.0.10"}},
		},
		{name: "none", raw: "Action=DescribeTargetHealth", want: []Target{}},
		{name: "bad index", raw: "Targets.member.x.Id=10.0.0.1", wantErr: CodeValidationError},
		{name: "bad port", raw: "Targets.member.1.Id=10.0.0.1&Targets.member.1.Port=0", wantErr: CodeValidationError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, apiErr := queryForm(v).targets("Targets")
			if tc.wantErr != "" {
				if apiErr == nil || apiErr.Code != tc.wantErr {
					t.Fatalf("got %v, want %s", apiErr, tc.wantErr)
				}
				return
			}
			if apiErr != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v %v, want %v", got, apiErr, tc.want)
			}
		})
	}
}

func TestQueryFormListsAndKeyValues(t *testing.T) {
	v, _ := url.ParseQuery("Names.member.2=b&Names.member.1=a&Tags.member.1.Key=k&Tags.member.1.Value=v&Tags.member.2.Key=empty")
	f := queryForm(v)
	if names, err := f.list("Names"); err != nil || !reflect.DeepEqual(names, []string{"a", "b"}) {
		t.Fatalf("names %v %v", names, err)
	}
	if kvs, err := f.keyValues("Tags"); err != nil || !reflect.DeepEqual(kvs, []keyValue{{"k", "v"}, {"empty", ""}}) {
		t.Fatalf("tags %v %v", kvs, err)
	}
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		spec    string
		match   []int
		noMatch []int
		bad     bool
	}{
		{spec: "200", match: []int{200}, noMatch: []int{201, 500}},
		{spec: "200,202", match: []int{200, 202}, noMatch: []int{201}},
		{spec: "200-299", match: []int{200, 250, 299}, noMatch: []int{199, 300}},
		{spec: "200-299,404", match: []int{204, 404}, noMatch: []int{403}},
		{spec: "", bad: true},
		{spec: "abc", bad: true},
		{spec: "299-200", bad: true},
		{spec: "100", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			m, err := parseMatcher(tc.spec)
			if tc.bad {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.match {
				if !m(c) {
					t.Errorf("%d should match", c)
				}
			}
			for _, c := range tc.noMatch {
				if m(c) {
					t.Errorf("%d should not match", c)
				}
			}
		})
	}
}

func TestCeilSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 0, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, 300 * time.Second: 300} {
		if got := ceilSeconds(d); got != want {
			t.Errorf("ceilSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	for _, n := range []int{0, 3, 400} {
		if got, err := decodeMarker(encodeMarker(n)); err != nil || got != n {
			t.Errorf("marker %d came back %d %v", n, got, err)
		}
	}
	if _, err := decodeMarker("bm90LW91cnM="); err == nil {
		t.Error("foreign marker accepted")
	}
}
