package geom

import (
	"math"
	"testing"
)

func pt(x, y float64) Point { return Point{x, y} }

func TestSideImageCoordinates(t *testing.T) {
	a, b := pt(0, 0), pt(1, 0) // pointing right on screen
	if got := Side(a, b, pt(0.5, 1)); got != 1 {
		t.Errorf("below a rightward line is its right side: got %d, want 1", got)
	}
	if got := Side(a, b, pt(0.5, -1)); got != -1 {
		t.Errorf("above a rightward line is its left side: got %d, want -1", got)
	}
	if got := Side(a, b, pt(7, 0)); got != 0 {
		t.Errorf("collinear point: got %d, want 0", got)
	}
	if got := Side(a, a, pt(3, 4)); got != 0 {
		t.Errorf("zero-length line: got %d, want 0", got)
	}
	if got := SignedDistance(a, b, pt(3, 2)); got != 2 {
		t.Errorf("SignedDistance = %v, want 2", got)
	}
	if got := SignedDistance(a, a, pt(3, 2)); got != 0 {
		t.Errorf("SignedDistance on zero-length line = %v, want 0", got)
	}
}

func TestSegmentsIntersect(t *testing.T) {
	tests := []struct {
		name       string
		a, b, c, d Point
		want       bool
	}{
		{"proper cross", pt(0, 0), pt(2, 2), pt(0, 2), pt(2, 0), true},
		{"disjoint", pt(0, 0), pt(1, 0), pt(0, 1), pt(1, 1), false},
		{"parallel apart", pt(0, 0), pt(2, 0), pt(0, 1), pt(2, 1), false},
		{"collinear overlap", pt(0, 0), pt(2, 0), pt(1, 0), pt(3, 0), true},
		{"collinear apart", pt(0, 0), pt(1, 0), pt(2, 0), pt(3, 0), false},
		{"collinear touching endpoints", pt(0, 0), pt(1, 0), pt(1, 0), pt(3, 0), true},
		{"touching endpoints at angle", pt(0, 0), pt(1, 1), pt(1, 1), pt(2, 0), true},
		{"T junction", pt(0, 0), pt(2, 0), pt(1, 0), pt(1, 5), true},
		{"line would cross, segment stops short", pt(0, 0), pt(2, 0), pt(1, 1), pt(1, 3), false},
		{"zero-length on segment", pt(1, 0), pt(1, 0), pt(0, 0), pt(2, 0), true},
		{"zero-length off segment", pt(1, 1), pt(1, 1), pt(0, 0), pt(2, 0), false},
		{"zero-length on extension", pt(3, 0), pt(3, 0), pt(0, 0), pt(2, 0), false},
		{"both zero-length equal", pt(1, 1), pt(1, 1), pt(1, 1), pt(1, 1), true},
		{"both zero-length different", pt(1, 1), pt(1, 1), pt(1, 2), pt(1, 2), false},
		{"NaN", pt(math.NaN(), 0), pt(1, 1), pt(0, 1), pt(1, 0), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, perm := range [][4]Point{
				{tc.a, tc.b, tc.c, tc.d}, {tc.b, tc.a, tc.c, tc.d},
				{tc.c, tc.d, tc.a, tc.b}, {tc.d, tc.c, tc.b, tc.a},
			} {
				if got := SegmentsIntersect(perm[0], perm[1], perm[2], perm[3]); got != tc.want {
					t.Errorf("SegmentsIntersect(%v) = %v, want %v", perm, got, tc.want)
				}
			}
		})
	}
}

func TestPolygonContains(t *testing.T) {
	square := Polygon{pt(0, 0), pt(4, 0), pt(4, 4), pt(0, 4)}
	// A "U" shape: concave, so a ray from the notch crosses four edges.
	u := Polygon{pt(0, 0), pt(6, 0), pt(6, 6), pt(4, 6), pt(4, 2), pt(2, 2), pt(2, 6), pt(0, 6)}
	tests := []struct {
		name string
		pg   Polygon
		p    Point
		want bool
	}{
		{"inside", square, pt(2, 2), true},
		{"outside", square, pt(5, 2), false},
		{"on edge", square, pt(4, 2), true},
		{"on vertex", square, pt(0, 0), true},
		{"ray through vertex, outside", square, pt(-1, 0), false},
		{"ray through vertex, inside", Polygon{pt(0, 0), pt(2, -2), pt(4, 0), pt(2, 2)}, pt(1, 0), true},
		{"concave notch is outside", u, pt(3, 4), false},
		{"concave arm is inside", u, pt(5, 4), true},
		{"concave bottom is inside", u, pt(3, 1), true},
		{"empty", Polygon{}, pt(0, 0), false},
		{"single vertex contains itself", Polygon{pt(1, 1)}, pt(1, 1), true},
		{"single vertex", Polygon{pt(1, 1)}, pt(1, 2), false},
		{"two vertices: on the segment", Polygon{pt(0, 0), pt(2, 2)}, pt(1, 1), true},
		{"collinear: off the line", Polygon{pt(0, 0), pt(1, 1), pt(2, 2)}, pt(1, 0), false},
		{"collinear: on the line", Polygon{pt(0, 0), pt(1, 1), pt(2, 2)}, pt(1.5, 1.5), true},
		{"NaN point", square, pt(math.NaN(), 1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.pg.Contains(tc.p); got != tc.want {
				t.Errorf("Contains(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
	if a := u.Area(); a != 28 {
		t.Errorf("U area = %v, want 28", a)
	}
	if a := (Polygon{pt(0, 0), pt(1, 1), pt(2, 2)}).Area(); a != 0 {
		t.Errorf("collinear area = %v, want 0", a)
	}
}

// refSegments decides intersection of integer segments by exact parametric
// algebra, independently of SegmentsIntersect's orientation tests.
func refSegments(a, b, c, d [2]int64) bool {
	cross := func(u, v [2]int64) int64 { return u[0]*v[1] - u[1]*v[0] }
	sub := func(u, v [2]int64) [2]int64 { return [2]int64{u[0] - v[0], u[1] - v[1]} }
	onSeg := func(p, q, r [2]int64) bool { // r on p-q
		return cross(sub(q, p), sub(r, p)) == 0 &&
			min(p[0], q[0]) <= r[0] && r[0] <= max(p[0], q[0]) &&
			min(p[1], q[1]) <= r[1] && r[1] <= max(p[1], q[1])
	}
	r, s := sub(b, a), sub(d, c)
	switch {
	case r == [2]int64{} && s == [2]int64{}:
		return a == c
	case r == [2]int64{}:
		return onSeg(c, d, a)
	case s == [2]int64{}:
		return onSeg(a, b, c)
	}
	den := cross(r, s)
	if den == 0 {
		if cross(r, sub(c, a)) != 0 {
			return false // parallel, not collinear
		}
		dot := func(u, v [2]int64) int64 { return u[0]*v[0] + u[1]*v[1] }
		tc, td := dot(sub(c, a), r), dot(sub(d, a), r)
		return max(min(tc, td), 0) <= min(max(tc, td), dot(r, r))
	}
	tn, un := cross(sub(c, a), s), cross(sub(c, a), r)
	if den < 0 {
		den, tn, un = -den, -tn, -un
	}
	return 0 <= tn && tn <= den && 0 <= un && un <= den
}

func FuzzSegmentsIntersect(f *testing.F) {
	f.Add(int8(0), int8(0), int8(2), int8(2), int8(0), int8(2), int8(2), int8(0))
	f.Add(int8(0), int8(0), int8(2), int8(0), int8(1), int8(0), int8(3), int8(0))
	f.Add(int8(1), int8(1), int8(1), int8(1), int8(0), int8(0), int8(2), int8(2))
	f.Fuzz(func(t *testing.T, ax, ay, bx, by, cx, cy, dx, dy int8) {
		a, b := [2]int64{int64(ax), int64(ay)}, [2]int64{int64(bx), int64(by)}
		c, d := [2]int64{int64(cx), int64(cy)}, [2]int64{int64(dx), int64(dy)}
		P := func(v [2]int64) Point { return Point{float64(v[0]), float64(v[1])} }
		want := refSegments(a, b, c, d)
		got := SegmentsIntersect(P(a), P(b), P(c), P(d))
		if got != want {
			t.Fatalf("SegmentsIntersect(%v,%v,%v,%v) = %v, exact reference says %v", a, b, c, d, got, want)
		}
		// Symmetry: order of segments and of endpoints does not matter.
		if SegmentsIntersect(P(d), P(c), P(b), P(a)) != got {
			t.Fatalf("not symmetric for %v,%v,%v,%v", a, b, c, d)
		}
		// Scaling into normalised coordinates by a power of two is exact.
		S := func(v [2]int64) Point { return Point{float64(v[0]) / 256, float64(v[1]) / 256} }
		if SegmentsIntersect(S(a), S(b), S(c), S(d)) != got {
			t.Fatalf("not scale invariant for %v,%v,%v,%v", a, b, c, d)
		}
	})
}

func FuzzPolygonContains(f *testing.F) {
	f.Add(int8(0), int8(0), int8(4), int8(0), int8(0), int8(4), int8(1), int8(1))  // inside
	f.Add(int8(0), int8(0), int8(4), int8(0), int8(0), int8(4), int8(2), int8(2))  // on hypotenuse
	f.Add(int8(0), int8(0), int8(4), int8(0), int8(8), int8(0), int8(2), int8(0))  // collinear, on it
	f.Add(int8(0), int8(0), int8(4), int8(0), int8(8), int8(0), int8(2), int8(1))  // collinear, off it
	f.Add(int8(1), int8(1), int8(1), int8(1), int8(1), int8(1), int8(1), int8(1))  // all one point
	f.Add(int8(0), int8(0), int8(4), int8(4), int8(0), int8(8), int8(-1), int8(4)) // ray through vertex
	f.Fuzz(func(t *testing.T, ax, ay, bx, by, cx, cy, px, py int8) {
		a, b, c := pt(float64(ax), float64(ay)), pt(float64(bx), float64(by)), pt(float64(cx), float64(cy))
		p := pt(float64(px), float64(py))
		tri := Polygon{a, b, c}
		got := tri.Contains(p)

		// Reference: a non-degenerate triangle holds p (boundary included)
		// when p is on the same side of all three edges, or on one of them;
		// a degenerate one holds only the points of its edges.
		var want bool
		if Orient(a, b, c) == 0 {
			want = OnSegment(a, b, p) || OnSegment(b, c, p) || OnSegment(c, a, p)
		} else {
			s1, s2, s3 := Side(a, b, p), Side(b, c, p), Side(c, a, p)
			want = (s1 >= 0 && s2 >= 0 && s3 >= 0) || (s1 <= 0 && s2 <= 0 && s3 <= 0)
		}
		if got != want {
			t.Fatalf("triangle %v Contains(%v) = %v, want %v", tri, p, got, want)
		}
		// Winding and starting vertex do not matter.
		for _, q := range []Polygon{{b, c, a}, {c, a, b}, {c, b, a}, {a, c, b}} {
			if q.Contains(p) != got {
				t.Fatalf("polygon %v disagrees with %v on %v", q, tri, p)
			}
		}
		// A repeated vertex (zero-length edge) changes nothing.
		if (Polygon{a, a, b, c}).Contains(p) != got {
			t.Fatalf("repeated vertex changed the answer for %v on %v", tri, p)
		}
		// Splitting the square into two triangles: the point is in the square
		// exactly when it is in one of them (a concave-free property check).
		sq := Polygon{a, pt(a.X+float64(bx&15)+1, a.Y), pt(a.X+float64(bx&15)+1, a.Y+float64(by&15)+1), pt(a.X, a.Y+float64(by&15)+1)}
		inSq := sq.Contains(p)
		inTris := Polygon{sq[0], sq[1], sq[2]}.Contains(p) || Polygon{sq[0], sq[2], sq[3]}.Contains(p)
		if inSq != inTris {
			t.Fatalf("rectangle %v Contains(%v) = %v but its triangles say %v", sq, p, inSq, inTris)
		}
		// Boundary points are always contained.
		if tri.OnBoundary(p) && !got {
			t.Fatalf("boundary point %v not contained in %v", p, tri)
		}
		// Points beyond the bounding box never are.
		far := pt(math.Max(math.Max(a.X, b.X), c.X)+1, p.Y)
		if tri.Contains(far) {
			t.Fatalf("point %v right of the bounding box is contained in %v", far, tri)
		}
	})
}
