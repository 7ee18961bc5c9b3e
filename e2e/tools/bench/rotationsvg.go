package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"time"
)

// Layout of the scaling curves, in pixels.
const (
	curveWidth  = 960
	curvePanelW = 280
	curvePanelH = 200
	curveLeft   = 50
	curveTop    = 50
	curveGap    = 40
	curveColor  = "#1f77b4"
	curveColor2 = "#ff7f0e"
)

// curvePanel is one panel: up to two series over the terminating pods.
type curvePanel struct {
	title  string
	series [2][]float64
	names  [2]string
}

// ScalingSVG draws the rotation's cost against the number of terminating
// pods: hold p50 and p99, DescribeTargetHealth calls per poll interval and
// the largest replica's peak RSS, in the demo's timeline's style.
func ScalingSVG(curve []*rotationRun, interval time.Duration) []byte {
	var pods []float64
	panels := []curvePanel{
		{title: "hold (s)", names: [2]string{"p50", "p99"}},
		{title: "DescribeTargetHealth / interval", names: [2]string{"cluster-wide", "groups with holds"}},
		{title: "replica peak RSS (MiB)", names: [2]string{"max", ""}},
	}
	for _, r := range curve {
		f := figuresOf(r, interval)
		pods = append(pods, float64(r.pods))
		panels[0].series[0] = append(panels[0].series[0], f.holdP50)
		panels[0].series[1] = append(panels[0].series[1], f.holdP99)
		panels[1].series[0] = append(panels[1].series[0], f.callsPerInterval)
		panels[1].series[1] = append(panels[1].series[1], float64(f.peakGroups))
		panels[2].series[0] = append(panels[2].series[0], f.rssMax)
	}
	return drawCurves(pods, panels)
}

func drawCurves(pods []float64, panels []curvePanel) []byte {
	var b bytes.Buffer
	height := curveTop + curvePanelH + 60
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", curveWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-weight="bold" font-size="14">albdrain rotation: cost against terminating pods (log scale)</text>`+"\n")
	maxPods := 1.0
	for _, p := range pods {
		maxPods = max(maxPods, p)
	}
	// Pods on a log axis from 1: 10, 100 and 500 spread evenly.
	x := func(left int, p float64) float64 {
		return float64(left) + float64(curvePanelW)*math.Log10(max(p, 1))/math.Log10(max(maxPods, 10))
	}
	for i, pn := range panels {
		left := curveLeft + i*(curvePanelW+curveGap)
		top := curveTop
		top1 := 1.0
		for _, s := range pn.series {
			for _, v := range s {
				if !math.IsNaN(v) {
					top1 = max(top1, v)
				}
			}
		}
		y := func(v float64) float64 { return float64(top+curvePanelH) - float64(curvePanelH)*v/(top1*1.1) }
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", left, top-10, html.EscapeString(pn.title))
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`, left, left+curvePanelW, top+curvePanelH, top+curvePanelH)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`, left, left, top, top+curvePanelH)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" font-size="10">%.3g</text>`, left-4, y(top1)+4, top1)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-size="10">0</text>`+"\n", left-4, top+curvePanelH+4)
		for _, p := range pods {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="10">%g</text>`, x(left, p), top+curvePanelH+15, p)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="10">terminating pods</text>`+"\n", left+curvePanelW/2, top+curvePanelH+30)
		for k, s := range pn.series {
			if len(s) == 0 || pn.names[k] == "" {
				continue
			}
			color := []string{curveColor, curveColor2}[k]
			var path bytes.Buffer
			for j, v := range s {
				cmd := "L"
				if j == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, x(left, pods[j]), y(v))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s at %g pods: %.3g</title></circle>`,
					x(left, pods[j]), y(v), color, html.EscapeString(pn.names[k]), pods[j], v)
			}
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`, path.String(), color)
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", left+10, top+14+14*k, color, html.EscapeString(pn.names[k]))
		}
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}
