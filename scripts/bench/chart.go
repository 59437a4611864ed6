package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// chart draws the fan-out results as SVG: grouped bars of deliveries/s at
// saturation and of p99 latency at the fixed rate, fastws beside the
// baseline (per read, one write per connection) and the naive baseline,
// one group per protocol and receiver count.
func (r *Report) chart() string {
	type group struct {
		label  string
		rate   [3]*float64 // fastws, baseline, naive
		p99Lat [3]*float64
	}
	var gs []group
	for _, row := range r.Rows {
		if !strings.HasPrefix(row.Case, "fanout/") {
			continue
		}
		label := strings.TrimPrefix(row.Case, "fanout/")
		if len(gs) == 0 || gs[len(gs)-1].label != label {
			gs = append(gs, group{label: label})
		}
		g := &gs[len(gs)-1]
		switch row.Key {
		case "sat_deliveries_per_s":
			g.rate = [3]*float64{row.Fastws, row.Baseline, row.Naive}
		case "rate_p99_ms":
			g.p99Lat = [3]*float64{row.Fastws, row.Baseline, row.Naive}
		}
	}
	const (
		panelW, panelH = 460, 300
		top, left      = 84, 60
		bottom         = 40
		width          = left + 2*panelW + 40
		height         = top + panelH + bottom + 50
	)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">fastws vs raw gnet baseline: broadcast fan-out (1 sender)</text>`+"\n", left)
	fmt.Fprintf(&b, `<text x="%d" y="44" fill="#555">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf("%d CPUs, %s, %s, %s; %s",
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Kernel, r.Machine.GoVersion, r.Machine.StartedUTC)))
	// panel draws one chart; with logScale the axis runs over powers of
	// ten (latencies span milliseconds to seconds).
	panel := func(x0 int, title, unit string, scale float64, logScale bool, val func(g group) [3]*float64) {
		maxV, minV := 0.0, math.Inf(1)
		for _, g := range gs {
			for _, v := range val(g) {
				if v != nil && *v > 0 {
					maxV = max(maxV, *v*scale)
					minV = min(minV, *v*scale)
				}
			}
		}
		top0 := niceCeil(maxV)
		// height maps a value to its bar height in pixels.
		height := func(v float64) float64 { return float64(panelH) * v / top0 }
		ticks := []float64{0, top0 / 4, top0 / 2, 3 * top0 / 4, top0}
		if logScale && maxV > 0 {
			lo, hi := math.Floor(math.Log10(minV)), math.Ceil(math.Log10(maxV))
			if hi == lo {
				hi++
			}
			height = func(v float64) float64 {
				return float64(panelH) * (math.Log10(max(v, math.Pow(10, lo))) - lo) / (hi - lo)
			}
			ticks = nil
			for e := lo; e <= hi; e++ {
				ticks = append(ticks, math.Pow(10, e))
			}
			top0 = math.Pow(10, hi)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, top-14, html.EscapeString(title))
		for _, v := range ticks {
			y := float64(top+panelH) - height(v)
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y, x0+panelW-20, y)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", x0-6, y+4, trimFloat(v))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555" transform="rotate(-90 %d %d)">%s</text>`+"\n",
			x0-44, top+panelH/2, x0-44, top+panelH/2, html.EscapeString(unit))
		if len(gs) == 0 || top0 == 0 {
			return
		}
		gw := float64(panelW-20) / float64(len(gs))
		bw := gw * 0.24
		for i, g := range gs {
			gx := float64(x0) + gw*float64(i)
			for j, v := range val(g) {
				x := gx + gw*0.1 + float64(j)*(bw+gw*0.03)
				color := barColors[j]
				if v == nil {
					continue
				}
				h := height(*v * scale)
				y := float64(top+panelH) - h
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y, bw, h, color)
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11">%s</text>`+"\n", x+bw/2, y-4, trimFloat(*v*scale))
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+gw/2, top+panelH+18, html.EscapeString(g.label))
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", x0, top+panelH, x0+panelW-20, top+panelH)
	}
	panel(left, "deliveries/s at saturation (higher is better)", "million deliveries/s", 1e-6, false, func(g group) [3]*float64 { return g.rate })
	panel(left+panelW+40, "p99 delivery latency at 100 messages/s, log scale (lower is better)", "ms", 1, true, func(g group) [3]*float64 { return g.p99Lat })
	ly := top + panelH + 36
	x := left
	for j, name := range []string{"fastws", "baseline (per read, one write per connection)", "naive (one AsyncWrite per line per connection)"} {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", x, ly, barColors[j], x+18, ly+10, html.EscapeString(name))
		x += 40 + 7*len(name)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">baselines: raw gnet v2 (scripts/bench/baseline); groups: protocol/receivers</text>`+"\n", left, ly+30)
	b.WriteString("</svg>\n")
	return b.String()
}

// barColors are fastws's, the baseline's and the naive baseline's.
var barColors = [3]string{"#2b6cb0", "#718096", "#c0c4cc"}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	switch {
	case v >= 100 || v >= 1 && v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}
