package soak

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// WriteSVG draws one small panel per metric (RSS, heap in use, goroutines,
// fds, Mats when measured, p99) against time, as a self-contained SVG.
func WriteSVG(w io.Writer, title string, samples []Sample) error {
	type panel struct {
		name string
		ys   []float64
	}
	col := func(f func(Sample) float64) []float64 {
		out := make([]float64, len(samples))
		for i, x := range samples {
			out[i] = f(x)
		}
		return out
	}
	panels := []panel{
		{"RSS (MiB)", col(func(x Sample) float64 { return float64(x.RSS) / (1 << 20) })},
		{"heap in use, C + Go (MiB)", col(func(x Sample) float64 { return float64(x.Heap()) / (1 << 20) })},
		{"goroutines", col(func(x Sample) float64 { return float64(x.Goroutines) })},
		{"open fds", col(func(x Sample) float64 { return float64(x.FDs) })},
	}
	if len(samples) > 0 && samples[0].Mats >= 0 {
		panels = append(panels, panel{"live gocv Mats", col(func(x Sample) float64 { return float64(x.Mats) })})
	}
	panels = append(panels, panel{"e2e latency p99 (ms)", col(func(x Sample) float64 { return x.P99 })})

	const width, ph, left, right, top = 720.0, 120.0, 70.0, 20.0, 40.0
	height := top + float64(len(panels))*(ph+30) + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="22" font-size="14">%s</text>`+"\n", left, escape(title))
	tmax := 1.0
	if n := len(samples); n > 0 {
		tmax = max(samples[n-1].At.Minutes(), 1e-9)
	}
	for i, p := range panels {
		y0 := top + float64(i)*(ph+30) + 15
		lo, hi := 0.0, 1.0
		if len(p.ys) > 0 {
			lo, hi = math.Inf(1), math.Inf(-1)
			for _, y := range p.ys {
				lo, hi = min(lo, y), max(hi, y)
			}
			// Start the axis at zero so a flat line looks flat.
			lo = min(0, lo)
			if hi <= lo {
				hi = lo + 1
			}
			hi *= 1.1
		}
		pw := width - left - right
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left, y0-4, escape(p.name))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, y0, pw, ph)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%.4g</text><text x="%.0f" y="%.0f" text-anchor="end">%.4g</text>`+"\n",
			left-4, y0+10, hi, left-4, y0+ph, lo)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%.1f min</text>`+"\n", left+pw, y0+ph+13, tmax)
		var pts []string
		for j, y := range p.ys {
			x := left + samples[j].At.Minutes()/tmax*pw
			yy := y0 + ph - (y-lo)/(hi-lo)*ph
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, yy))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(pts, " "))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
