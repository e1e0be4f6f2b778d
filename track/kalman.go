package track

import (
	"math"

	"github.com/osprey-vision/osprey/geom"
)

// axis is a constant-velocity Kalman filter on one coordinate: state
// (position, velocity), covariance [[p00, p01], [p01, p11]]. The box state
// (cx, cy, w, h and their velocities) uses four of them: with a block
// transition and diagonal noises the 8-state filter decouples exactly into
// independent 2-state filters, which is what makes 500 tracks cheap.
type axis struct {
	x, v          float64
	p00, p01, p11 float64
}

// predict advances the state by dt seconds with white-noise acceleration of
// spectral density q (the continuous model, so the result does not depend on
// how a time span is cut into frames).
func (a *axis) predict(dt, q float64) {
	a.x += a.v * dt
	a.p00 += dt*(2*a.p01+dt*a.p11) + q*dt*dt*dt/3
	a.p01 += dt*a.p11 + q*dt*dt/2
	a.p11 += q * dt
}

// update folds in a measurement z with variance r.
func (a *axis) update(z, r float64) {
	s := a.p00 + r
	k0, k1 := a.p00/s, a.p01/s
	y := z - a.x
	a.x += k0 * y
	a.v += k1 * y
	a.p11 -= k1 * a.p01
	a.p00 *= 1 - k0
	a.p01 *= 1 - k0
}

// kalman tracks a box as centre, size and their velocities, in pixels and
// pixels per second. Noise scales with the box size (x and w with the width,
// y and h with the height), as in SORT/ByteTrack, so near and far objects are
// treated alike.
type kalman struct {
	ax [4]axis // cx, cy, w, h
}

// initVelocity is the prior velocity uncertainty, in box sizes per second.
const initVelocity = 2.0

func newKalman(b geom.Rect, measNoise float64) kalman {
	var k kalman
	z := boxState(b)
	for i := range k.ax {
		s := scaleFor(i, z)
		k.ax[i] = axis{x: z[i], p00: sq(2 * measNoise * s), p11: sq(initVelocity * s)}
	}
	return k
}

func (k *kalman) predict(dt, motionNoise float64) {
	if dt <= 0 {
		return
	}
	z := k.state()
	for i := range k.ax {
		k.ax[i].predict(dt, sq(motionNoise*scaleFor(i, z)))
	}
}

func (k *kalman) update(b geom.Rect, measNoise float64) {
	z := boxState(b)
	for i := range k.ax {
		k.ax[i].update(z[i], sq(measNoise*scaleFor(i, z)))
	}
}

func (k *kalman) state() [4]float64 {
	return [4]float64{k.ax[0].x, k.ax[1].x, k.ax[2].x, k.ax[3].x}
}

// box returns the current estimate; sizes never go below a pixel fraction so
// IoU stays defined when a shrinking prediction overshoots.
func (k *kalman) box() geom.Rect {
	w, h := math.Max(k.ax[2].x, 1e-3), math.Max(k.ax[3].x, 1e-3)
	return geom.Rect{X: k.ax[0].x - w/2, Y: k.ax[1].x - h/2, W: w, H: h}
}

func boxState(b geom.Rect) [4]float64 {
	return [4]float64{b.X + b.W/2, b.Y + b.H/2, b.W, b.H}
}

// scaleFor returns the size the noise of state component i scales with.
func scaleFor(i int, z [4]float64) float64 {
	s := z[3] // cy and h scale with the height
	if i == 0 || i == 2 {
		s = z[2] // cx and w with the width
	}
	return math.Max(s, 1e-3)
}

func sq(v float64) float64 { return v * v }
