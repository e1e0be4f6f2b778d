package governor

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Series is one line of a timeline plot: X in seconds, Y in milliseconds.
type Series struct {
	Name   string
	Color  string
	X, Y   []float64
	Dashed bool
}

// Plot is a latency timeline with the budget and the governor's level.
type Plot struct {
	Title    string
	TargetMs float64
	Series   []Series
	// LevelX/Level draw the governor level as a step line on a second axis
	// labelled with LevelNames.
	LevelX     []float64
	Level      []int
	LevelNames []string
	// Shade marks [from, to) seconds, e.g. the doubled-load phase.
	ShadeFrom, ShadeTo float64
	ShadeLabel         string
}

// WriteSVG draws p as a self-contained SVG (no scripts, no fonts fetched).
func WriteSVG(w io.Writer, p Plot) error {
	const W, H, left, right, top, bottom = 1020.0, 480.0, 70.0, 230.0, 40.0, 50.0
	pw, ph := W-left-right, H-top-bottom
	var xmax, ymax float64
	for _, s := range p.Series {
		for i := range s.X {
			xmax, ymax = math.Max(xmax, s.X[i]), math.Max(ymax, s.Y[i])
		}
	}
	ymax = math.Max(ymax, p.TargetMs) * 1.1
	if xmax == 0 || ymax == 0 {
		return fmt.Errorf("governor: plot has no data")
	}
	ymax = math.Min(ymax, 4*p.TargetMs) // keep the budget readable; clipped points sit on the top edge
	px := func(x float64) float64 { return left + x/xmax*pw }
	py := func(y float64) float64 { return top + ph - math.Min(y, ymax)/ymax*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%g" y="20" font-size="15">%s</text>`+"\n", left, html.EscapeString(p.Title))
	if p.ShadeTo > p.ShadeFrom {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%g" width="%.1f" height="%g" fill="#f3e6c8"/>`+"\n", px(p.ShadeFrom), top, px(p.ShadeTo)-px(p.ShadeFrom), ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" fill="#8a6d1f">%s</text>`+"\n", px(p.ShadeFrom)+4, top+14, html.EscapeString(p.ShadeLabel))
	}
	// Axes and ticks.
	fmt.Fprintf(&b, `<path d="M%g %g V%g H%g" stroke="black" fill="none"/>`+"\n", left, top, top+ph, left+pw)
	for i := 0; i <= 5; i++ {
		y := ymax * float64(i) / 5
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%.0f</text>`+"\n", left-6, py(y)+4, y)
		x := xmax * float64(i) / 5 // 5 ticks
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%.0f</text>`+"\n", px(x), top+ph+18, x)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">time (s)</text>`+"\n", left+pw/2, H-10)
	fmt.Fprintf(&b, `<text transform="translate(18 %g) rotate(-90)" text-anchor="middle">p99 latency per window (ms)</text>`+"\n", top+ph/2)
	fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="red" stroke-dasharray="6 4"/>`+"\n", left, left+pw, py(p.TargetMs), py(p.TargetMs))
	fmt.Fprintf(&b, `<text x="%g" y="%.1f" fill="red">target %.0f ms</text>`+"\n", left+pw+6, py(p.TargetMs)+4, p.TargetMs)
	// Level step line on its own scale in the lower part of the plot.
	if len(p.Level) > 0 && len(p.LevelNames) > 0 {
		n := float64(max(len(p.LevelNames)-1, 1))
		ly := func(l int) float64 { return top + ph - 10 - float64(l)/n*ph*0.35 }
		var d strings.Builder
		for i := range p.Level {
			if i == 0 {
				fmt.Fprintf(&d, "M%.1f %.1f", px(p.LevelX[i]), ly(p.Level[i]))
				continue
			}
			fmt.Fprintf(&d, " H%.1f V%.1f", px(p.LevelX[i]), ly(p.Level[i]))
		}
		fmt.Fprintf(&b, `<path d="%s" stroke="#2a7a2a" stroke-width="2" fill="none"/>`+"\n", d.String())
		for i, name := range p.LevelNames {
			fmt.Fprintf(&b, `<text x="%g" y="%.1f" fill="#2a7a2a">level %d: %s</text>`+"\n", left+pw+6, ly(i)+4, i, html.EscapeString(name))
		}
	}
	for k, s := range p.Series {
		var d strings.Builder
		for i := range s.X {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, px(s.X[i]), py(s.Y[i]))
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="3 3"`
		}
		fmt.Fprintf(&b, `<path d="%s" stroke="%s" stroke-width="1.6" fill="none"%s/>`+"\n", strings.TrimSpace(d.String()), s.Color, dash)
		fmt.Fprintf(&b, `<text x="%g" y="%g" fill="%s">%s</text>`+"\n", left+pw+6, top+14+16*float64(k), s.Color, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
