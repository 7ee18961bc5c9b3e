package main

import (
	"bytes"
	"fmt"
	"html"
	"time"

	"github.com/albdrain/albdrain/e2e/scenario"
)

// Layout of the timeline, in pixels.
const (
	svgWidth    = 960
	plotLeft    = 150
	plotRight   = svgWidth - 20
	trafficH    = 60
	podRowH     = 16
	panelGap    = 36
	titleH      = 22
	legendH     = 60
	axisH       = 20
	bucket      = 250 * time.Millisecond
	colorOK     = "#7fbf7f"
	colorFailed = "#d62728"
	colorHold   = "#1f77b4"
	colorStop   = "#ff7f0e"
	colorTruth  = "#000000"
)

// timeline draws each run as a panel on a shared time axis (seconds since
// its traffic started): requests per quarter second, served and failed, and
// one row per terminated pod showing its preStop hold, its stop and its true
// stop.
func timeline(results []*scenario.Result) []byte {
	var span time.Duration
	maxBucket := 1
	for _, r := range results {
		span = max(span, r.End.Sub(r.Start))
		for _, b := range buckets(r) {
			maxBucket = max(maxBucket, b.ok+b.failed)
		}
	}
	span = max(span, time.Second)
	tickEvery := 2 * time.Second
	if span > 40*time.Second {
		tickEvery = 5 * time.Second
	}
	if span > 100*time.Second {
		tickEvery = 10 * time.Second
	}
	x := func(d time.Duration) float64 {
		return plotLeft + float64(plotRight-plotLeft)*d.Seconds()/span.Seconds()
	}

	height := legendH
	for _, r := range results {
		height += titleH + trafficH + len(r.Terminations)*podRowH + axisH + panelGap
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", svgWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	legend(&b)

	y := legendH
	for _, r := range results {
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold" font-size="14">%s: %d of %d requests failed</text>`+"\n",
			y+15, html.EscapeString(string(r.Spec.Protection)), r.Summary.Errors, r.Summary.Requests)
		y += titleH

		fmt.Fprintf(&b, `<text x="10" y="%d">requests / %s</text>`+"\n", y+trafficH/2, bucket)
		for i, bk := range buckets(r) {
			// The last bucket may run past the span: draw it up to the edge.
			x0, x1 := x(time.Duration(i)*bucket), min(x(time.Duration(i+1)*bucket), plotRight)
			hOK := float64(trafficH) * float64(bk.ok) / float64(maxBucket)
			hFail := float64(trafficH) * float64(bk.failed) / float64(maxBucket)
			base := float64(y + trafficH)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x0, base-hOK, x1-x0, hOK, colorOK)
			if bk.failed > 0 {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%d failed</title></rect>`,
					x0, base-hOK-hFail, x1-x0, hFail, colorFailed, bk.failed)
			}
		}
		b.WriteString("\n")
		y += trafficH

		for _, t := range r.Terminations {
			mid := y + podRowH/2
			fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`, mid+4, html.EscapeString(t.Name))
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999"/>`, x(t.Noticed.Sub(r.Start)), x(t.Removed.Sub(r.Start)), mid, mid)
			stopFrom := t.Noticed
			for _, h := range t.Hooks {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s held %.1fs</title></rect>`,
					x(h.Start.Sub(r.Start)), y+3, x(h.End.Sub(r.Start))-x(h.Start.Sub(r.Start)), podRowH-6, colorHold,
					html.EscapeString(t.Name), h.Duration().Seconds())
				stopFrom = h.End
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`,
				x(stopFrom.Sub(r.Start)), y+3, max(x(t.Stopped.Sub(r.Start))-x(stopFrom.Sub(r.Start)), 1), podRowH-6, colorStop)
			if stop, ok := trueStop(r, t.Name); ok {
				// A diamond at the true stop: a release left of it was too early.
				sx := x(stop.Sub(r.Start))
				fmt.Fprintf(&b, `<path d="M%.1f %d l5 6 l-5 6 l-5 -6 z" fill="%s"><title>%s: last ALB node stopped routing at %.1fs</title></path>`,
					sx, y+2, colorTruth, html.EscapeString(t.Name), stop.Sub(r.Start).Seconds())
			}
			b.WriteString("\n")
			y += podRowH
		}

		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`, plotLeft, plotRight, y, y)
		for tick := time.Duration(0); tick <= span; tick += tickEvery {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#333"/><text x="%.1f" y="%d" text-anchor="middle" font-size="10">%ds</text>`,
				x(tick), x(tick), y, y+4, x(tick), y+15, int(tick.Seconds()))
		}
		b.WriteString("\n")
		y += axisH + panelGap
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func legend(b *bytes.Buffer) {
	items := []struct{ color, label string }{
		{colorOK, "requests served"},
		{colorFailed, "requests failed"},
		{colorHold, "pod held in preStop"},
		{colorStop, "pod stopping (SIGTERM to exit)"},
		{colorTruth, "true stop (last ALB node stops routing)"},
	}
	for i, it := range items {
		x, y := 10+(i%3)*310, 12+(i/3)*20
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="14" height="14" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", x, y, it.color, x+20, y+12, it.label)
	}
}

type trafficBucket struct{ ok, failed int }

// buckets counts a run's requests per bucket of their start time.
func buckets(r *scenario.Result) []trafficBucket {
	n := int(r.End.Sub(r.Start)/bucket) + 1
	out := make([]trafficBucket, n)
	for _, req := range r.Requests {
		i := int(req.Start.Sub(r.Start) / bucket)
		if i < 0 || i >= n {
			continue
		}
		if req.Failed() {
			out[i].failed++
		} else {
			out[i].ok++
		}
	}
	return out
}
