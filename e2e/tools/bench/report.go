package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"text/tabwriter"
)

// Figure is one measured number under its JSON key, e.g.
// "webhook.handler_p99_us".
type Figure struct {
	Key   string
	Value float64
}

// Comparison is one row of the table: a figure of albdrain's beside its
// baseline from the same run, and the target it is held to.
type Comparison struct {
	// What names the measurement, with its unit.
	What string
	// Value and Baseline are the two figures; Ratio is Value/Baseline.
	Value, Baseline float64
	// BaselineWhat says what the baseline is.
	BaselineWhat string
	// Target states the goal; Met says whether this run reached it.
	Target string
	Met    bool
}

// Ratio is Value/Baseline, or NaN without a baseline.
func (c Comparison) Ratio() float64 {
	if c.Baseline == 0 {
		return math.NaN()
	}
	return c.Value / c.Baseline
}

// Section is what one measurement produced.
type Section struct {
	// Name is the JSON key prefix, e.g. "webhook".
	Name        string
	Figures     []Figure
	Comparisons []Comparison
	// Notes explain the setup in a line or two each.
	Notes []string
	// Details are printed under the figures, e.g. one line per pod.
	Details []string
}

// Add appends a figure, rounded to microsecond-ish precision so the JSON
// stays readable.
func (s *Section) Add(key string, v float64) {
	s.Figures = append(s.Figures, Figure{Key: s.Name + "." + key, Value: round(v)})
}

// Compare appends a table row.
func (s *Section) Compare(c Comparison) {
	c.Value, c.Baseline = round(c.Value), round(c.Baseline)
	s.Comparisons = append(s.Comparisons, c)
}

func round(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	return math.Round(v*1e4) / 1e4
}

// Report is the whole run.
type Report struct {
	Machine  Machine
	Sections []*Section
}

// WriteTable prints the comparisons, then every figure.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "machine: %s\n\n", r.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\talbdrain\tbaseline\tratio\ttarget\tmet")
	for _, s := range r.Sections {
		for _, c := range s.Comparisons {
			met := "yes"
			if !c.Met {
				met = "NO"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s (%s)\t%s\t%s\t%s\n", c.What, num(c.Value), num(c.Baseline), c.BaselineWhat, num(round(c.Ratio())), c.Target, met)
		}
	}
	tw.Flush()
	for _, s := range r.Sections {
		fmt.Fprintf(w, "\n%s:\n", s.Name)
		for _, n := range s.Notes {
			fmt.Fprintf(w, "  # %s\n", n)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range s.Figures {
			fmt.Fprintf(tw, "  %s\t%s\n", f.Key, num(f.Value))
		}
		tw.Flush()
		for _, d := range s.Details {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.4g", v)
}

// WriteJSON writes one flat object: every figure under its dotted key, the
// machine under "machine.*", and each table row n (from 1) under
// "targets.<n>.*": what, value, baseline, ratio, target and met.
func (r *Report) WriteJSON(path string) error {
	out := map[string]any{
		"machine.nproc":     r.Machine.CPUs,
		"machine.cpu_model": r.Machine.CPUModel,
		"machine.go":        r.Machine.GoVersion,
		"machine.kernel":    r.Machine.Kernel,
	}
	// JSON has no NaN; a figure that could not be computed is null.
	number := func(v float64) any {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return v
	}
	row := 0
	for _, s := range r.Sections {
		for _, f := range s.Figures {
			out[f.Key] = number(f.Value)
		}
		for _, c := range s.Comparisons {
			row++
			prefix := fmt.Sprintf("targets.%d.", row)
			out[prefix+"what"] = c.What
			out[prefix+"value"] = number(c.Value)
			out[prefix+"baseline"] = number(c.Baseline)
			out[prefix+"baseline_what"] = c.BaselineWhat
			out[prefix+"ratio"] = number(round(c.Ratio()))
			out[prefix+"target"] = c.Target
			out[prefix+"met"] = c.Met
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
