package bench

import "testing"

func TestParseBenchmark(t *testing.T) {
	out := "goos: linux\nBenchmarkAdmission-2   \t    9076\t    118208 ns/op\t        98.00 baseline-p99-us\t         5.625 p99-ratio\t       552.0 p99-us\t   50136 B/op\t     752 allocs/op\nPASS\n"
	m, err := parseBenchmark(out, "BenchmarkAdmission", "p99-us", "baseline-p99-us")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"ns/op": 118208, "baseline-p99-us": 98, "p99-us": 552, "B/op": 50136, "allocs/op": 752}
	for unit, v := range want {
		if m[unit] != v {
			t.Errorf("%s = %v, want %v", unit, m[unit], v)
		}
	}
	if _, err := parseBenchmark("PASS\n", "BenchmarkAdmission"); err == nil {
		t.Error("no error without a result line")
	}
	if _, err := parseBenchmark(out, "BenchmarkAdmission", "calls/round"); err == nil {
		t.Error("no error for a missing unit")
	}
	// controller-runtime's warning on stderr, merged by go test, between
	// the name and the figures.
	split := "BenchmarkAdmission-2   \t[controller-runtime] log.SetLogger(...) was never called; logs will not be displayed.\n" +
		"Detected at:\n\t>  goroutine 7 [running]:\n    9076\t    118208 ns/op\t 98.00 baseline-p99-us\t 552.0 p99-us\t 50136 B/op\t 752 allocs/op\nPASS\n"
	if m, err := parseBenchmark(split, "BenchmarkAdmission", "p99-us"); err != nil || m["p99-us"] != 552 {
		t.Errorf("split result: %v, %v", m, err)
	}
}
