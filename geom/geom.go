// Package geom holds the plane geometry Osprey reasons with: boxes, points,
// polygons and segments, in pixels or in normalised [0,1] image coordinates.
// It is pure Go and allocation-free on its hot paths.
package geom

import (
	"encoding/json"
	"fmt"
	"math"
)

// Point is a 2-D point.
type Point struct{ X, Y float64 }

// Rect is an axis-aligned box given by its top-left corner and its size.
// It marshals to JSON as [x, y, w, h].
type Rect struct{ X, Y, W, H float64 }

// RectFromCorners returns the box spanning (x1,y1)-(x2,y2) in any corner order.
func RectFromCorners(x1, y1, x2, y2 float64) Rect {
	if x2 < x1 {
		x1, x2 = x2, x1
	}
	if y2 < y1 {
		y1, y2 = y2, y1
	}
	return Rect{X: x1, Y: y1, W: x2 - x1, H: y2 - y1}
}

// Right returns the x coordinate of the right edge.
func (r Rect) Right() float64 { return r.X + r.W }

// Bottom returns the y coordinate of the bottom edge.
func (r Rect) Bottom() float64 { return r.Y + r.H }

// Area returns the box area; empty or inverted boxes have area 0.
func (r Rect) Area() float64 {
	if r.W <= 0 || r.H <= 0 {
		return 0
	}
	return r.W * r.H
}

// Center returns the centre of the box.
func (r Rect) Center() Point { return Point{r.X + r.W/2, r.Y + r.H/2} }

// BottomCenter returns the middle of the bottom edge (a person's feet).
func (r Rect) BottomCenter() Point { return Point{r.X + r.W/2, r.Y + r.H} }

// Intersect returns the overlap of r and s (zero-sized when they do not overlap).
func (r Rect) Intersect(s Rect) Rect {
	x1, y1 := math.Max(r.X, s.X), math.Max(r.Y, s.Y)
	x2, y2 := math.Min(r.Right(), s.Right()), math.Min(r.Bottom(), s.Bottom())
	if x2 <= x1 || y2 <= y1 {
		return Rect{X: x1, Y: y1}
	}
	return Rect{X: x1, Y: y1, W: x2 - x1, H: y2 - y1}
}

// IoU returns the intersection over union of r and s, in [0,1].
func (r Rect) IoU(s Rect) float64 {
	inter := r.Intersect(s).Area()
	if inter == 0 {
		return 0
	}
	return inter / (r.Area() + s.Area() - inter)
}

// Scale returns r with x and w multiplied by sx, y and h by sy.
func (r Rect) Scale(sx, sy float64) Rect {
	return Rect{X: r.X * sx, Y: r.Y * sy, W: r.W * sx, H: r.H * sy}
}

// Clamp returns r clipped to the box (0,0)-(w,h).
func (r Rect) Clamp(w, h float64) Rect {
	x1, y1 := math.Max(0, r.X), math.Max(0, r.Y)
	x2, y2 := math.Min(w, r.Right()), math.Min(h, r.Bottom())
	if x2 < x1 {
		x2 = x1
	}
	if y2 < y1 {
		y2 = y1
	}
	return Rect{X: x1, Y: y1, W: x2 - x1, H: y2 - y1}
}

// MarshalJSON writes the box as [x, y, w, h].
func (r Rect) MarshalJSON() ([]byte, error) {
	return json.Marshal([4]float64{round6(r.X), round6(r.Y), round6(r.W), round6(r.H)})
}

// UnmarshalJSON reads a box written as [x, y, w, h].
func (r *Rect) UnmarshalJSON(b []byte) error {
	var a []float64
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("geom: box must be [x, y, w, h]: %w", err)
	}
	if len(a) != 4 {
		return fmt.Errorf("geom: box must have 4 numbers [x, y, w, h], got %d", len(a))
	}
	*r = Rect{X: a[0], Y: a[1], W: a[2], H: a[3]}
	return nil
}

// round6 keeps JSON short: micro-pixel precision is beyond any detector.
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
