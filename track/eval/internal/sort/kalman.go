package sort

import (
	"math"

	"github.com/osprey-vision/osprey/geom"
)

// filter is SORT's 7-state Kalman filter: x = (u, v, s, r, u', v', s'),
// measurement z = (u, v, s, r), with the reference code's matrices:
// P0 = 10·I with the velocity block ×1000 more, R = I with the s, r block
// ×10, Q = I with the velocity block ×0.01 and the s' term ×0.01 again.
// Updates use the Joseph form, as the filter library SORT builds on does.
type filter struct {
	x [7]float64
	p [7][7]float64
}

var q = func() (m [7][7]float64) {
	for i := range 7 {
		m[i][i] = 1
	}
	for i := 4; i < 7; i++ {
		m[i][i] *= 0.01
	}
	m[6][6] *= 0.01
	return m
}()

var r = [4]float64{1, 1, 10, 10}

func toZ(b geom.Rect) [4]float64 {
	return [4]float64{b.X + b.W/2, b.Y + b.H/2, b.W * b.H, b.W / b.H}
}

func newFilter(b geom.Rect) filter {
	var f filter
	z := toZ(b)
	copy(f.x[:4], z[:])
	for i := range 7 {
		f.p[i][i] = 10
	}
	for i := 4; i < 7; i++ {
		f.p[i][i] *= 1000
	}
	return f
}

// predict applies x' = F x, P' = F P Fᵀ + Q with F adding the velocities
// (u', v', s') to (u, v, s) over one frame. Like the reference code, a
// predicted area that would go negative has its rate zeroed first.
func (f *filter) predict() {
	if f.x[6]+f.x[2] <= 0 {
		f.x[6] = 0
	}
	for i := range 3 {
		f.x[i] += f.x[i+4]
	}
	// F P: row i (i < 3) gains row i+4.
	var fp [7][7]float64
	for i := range 7 {
		fp[i] = f.p[i]
		if i < 3 {
			for j := range 7 {
				fp[i][j] += f.p[i+4][j]
			}
		}
	}
	// (F P) Fᵀ: column j (j < 3) gains column j+4.
	for i := range 7 {
		for j := range 7 {
			v := fp[i][j]
			if j < 3 {
				v += fp[i][j+4]
			}
			f.p[i][j] = v + q[i][j]
		}
	}
}

// update folds in a detection; H picks the first four states.
func (f *filter) update(b geom.Rect) {
	z := toZ(b)
	// S = H P Hᵀ + R: the top-left 4×4 block of P plus R.
	var s [4][4]float64
	for i := range 4 {
		for j := range 4 {
			s[i][j] = f.p[i][j]
		}
		s[i][i] += r[i]
	}
	si, ok := inv4(s)
	if !ok {
		return
	}
	// K = P Hᵀ S⁻¹ (7×4).
	var k [7][4]float64
	for i := range 7 {
		for j := range 4 {
			var v float64
			for l := range 4 {
				v += f.p[i][l] * si[l][j]
			}
			k[i][j] = v
		}
	}
	var y [4]float64
	for i := range 4 {
		y[i] = z[i] - f.x[i]
	}
	for i := range 7 {
		for j := range 4 {
			f.x[i] += k[i][j] * y[j]
		}
	}
	// Joseph form: P = (I - K H) P (I - K H)ᵀ + K R Kᵀ.
	var a [7][7]float64 // I - K H
	for i := range 7 {
		a[i][i] = 1
		for j := range 4 {
			a[i][j] -= k[i][j]
		}
	}
	var ap [7][7]float64
	for i := range 7 {
		for j := range 7 {
			var v float64
			for l := range 7 {
				v += a[i][l] * f.p[l][j]
			}
			ap[i][j] = v
		}
	}
	for i := range 7 {
		for j := range 7 {
			var v float64
			for l := range 7 {
				v += ap[i][l] * a[j][l]
			}
			for l := range 4 {
				v += k[i][l] * r[l] * k[j][l]
			}
			f.p[i][j] = v
		}
	}
}

// box converts the state back to a corner box: w = √(s·r), h = s / w. A
// negative s·r gives NaN, which the tracker drops as the reference does.
func (f *filter) box() geom.Rect {
	w := math.Sqrt(f.x[2] * f.x[3])
	h := f.x[2] / w
	return geom.Rect{X: f.x[0] - w/2, Y: f.x[1] - h/2, W: w, H: h}
}

// inv4 inverts a 4×4 matrix by Gauss-Jordan elimination with partial
// pivoting.
func inv4(m [4][4]float64) ([4][4]float64, bool) {
	var out [4][4]float64
	for i := range 4 {
		out[i][i] = 1
	}
	for c := range 4 {
		p := c
		for i := c + 1; i < 4; i++ {
			if math.Abs(m[i][c]) > math.Abs(m[p][c]) {
				p = i
			}
		}
		if math.Abs(m[p][c]) < 1e-12 {
			return out, false
		}
		m[c], m[p] = m[p], m[c]
		out[c], out[p] = out[p], out[c]
		d := m[c][c]
		for j := range 4 {
			m[c][j] /= d
			out[c][j] /= d
		}
		for i := range 4 {
			if i == c {
				continue
			}
			f := m[i][c]
			for j := range 4 {
				m[i][j] -= f * m[c][j]
				out[i][j] -= f * out[c][j]
			}
		}
	}
	return out, true
}
