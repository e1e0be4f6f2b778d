package geom

import "math"

// Orient returns the cross product (b-a) x (p-a): twice the signed area of the
// triangle a, b, p. In image coordinates (y grows downwards) a positive value
// means p lies on the right of the directed line a->b as seen on screen, a
// negative value on its left, and zero means the three points are collinear.
func Orient(a, b, p Point) float64 {
	return (b.X-a.X)*(p.Y-a.Y) - (b.Y-a.Y)*(p.X-a.X)
}

// Side returns +1 when p is on the right of the directed line a->b (image
// coordinates, y down, as seen on screen), -1 when it is on the left and 0
// when it is on the line (or a == b, or any coordinate is NaN).
func Side(a, b, p Point) int {
	o := Orient(a, b, p)
	switch {
	case o > 0:
		return 1
	case o < 0:
		return -1
	}
	return 0
}

// SignedDistance returns the distance from p to the infinite line through a
// and b, positive on the right of a->b (see Side). It returns 0 when a == b.
func SignedDistance(a, b, p Point) float64 {
	l := math.Hypot(b.X-a.X, b.Y-a.Y)
	if l == 0 {
		return 0
	}
	return Orient(a, b, p) / l
}

// OnSegment reports whether p lies on the closed segment a-b (endpoints
// included). A zero-length segment contains only its single point.
func OnSegment(a, b, p Point) bool {
	return Orient(a, b, p) == 0 && within(a, b, p)
}

// within reports whether p lies in the bounding box of a and b.
func within(a, b, p Point) bool {
	return math.Min(a.X, b.X) <= p.X && p.X <= math.Max(a.X, b.X) &&
		math.Min(a.Y, b.Y) <= p.Y && p.Y <= math.Max(a.Y, b.Y)
}

// SegmentsIntersect reports whether the closed segments a-b and c-d share at
// least one point: proper crossings, touching endpoints, a point of one on
// the other and collinear overlaps all count. Zero-length segments act as
// points. Any NaN coordinate yields false.
func SegmentsIntersect(a, b, c, d Point) bool {
	o1, o2 := sign(Orient(a, b, c)), sign(Orient(a, b, d))
	o3, o4 := sign(Orient(c, d, a)), sign(Orient(c, d, b))
	if o1 == 2 || o2 == 2 || o3 == 2 || o4 == 2 {
		return false
	}
	if o1*o2 < 0 && o3*o4 < 0 {
		return true // proper crossing at a point interior to both
	}
	// Degenerate and touching cases: some point lies on the other segment's
	// line, so it intersects exactly when it lies within that segment.
	return (o1 == 0 && within(a, b, c)) || (o2 == 0 && within(a, b, d)) ||
		(o3 == 0 && within(c, d, a)) || (o4 == 0 && within(c, d, b))
}

// sign returns -1, 0 or +1, and 2 for NaN.
func sign(v float64) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	case v == 0:
		return 0
	}
	return 2
}

// Polygon is a closed polygon given by its vertices in order (either
// winding); the last vertex joins the first. Self-intersecting polygons use
// the even-odd rule.
type Polygon []Point

// Area returns the absolute area enclosed by the polygon (shoelace formula);
// it is 0 for fewer than 3 vertices or collinear vertices.
func (pg Polygon) Area() float64 {
	if len(pg) < 3 {
		return 0
	}
	var s float64
	for i := range pg {
		j := (i + 1) % len(pg)
		s += pg[i].X*pg[j].Y - pg[j].X*pg[i].Y
	}
	return math.Abs(s) / 2
}

// OnBoundary reports whether p lies on one of the polygon's edges.
func (pg Polygon) OnBoundary(p Point) bool {
	for i := range pg {
		if OnSegment(pg[i], pg[(i+1)%len(pg)], p) {
			return true
		}
	}
	return false
}

// Contains reports whether p is inside the polygon or on its boundary.
// An empty polygon contains nothing; one or two vertices, or collinear ones,
// enclose no area, so only points on their edges are contained. The test is
// exact for coordinates whose products are exact in float64 (it never
// divides), so results do not depend on winding or the starting vertex.
func (pg Polygon) Contains(p Point) bool {
	if len(pg) == 0 {
		return false
	}
	if pg.OnBoundary(p) {
		return true
	}
	inside := false
	for i := range pg {
		a, b := pg[i], pg[(i+1)%len(pg)]
		// Half-open rule on y so a vertex exactly at p.Y counts once.
		if (a.Y > p.Y) == (b.Y > p.Y) {
			continue
		}
		// The edge crosses the horizontal through p; count it when the
		// crossing is strictly right of p. Without dividing:
		// x_cross > p.X  <=>  Orient(a,b,p) has the sign of (b.Y-a.Y).
		o := Orient(a, b, p)
		if (b.Y > a.Y && o > 0) || (b.Y < a.Y && o < 0) {
			inside = !inside
		}
	}
	return inside
}
