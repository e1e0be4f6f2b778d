package track

import (
	"math"
	"testing"

	"github.com/osprey-vision/osprey/geom"
)

// The continuous noise model makes prediction independent of how a span of
// time is cut: one step of 0.3 s equals three of 0.1 s, state and covariance.
func TestKalmanPredictSplitInvariant(t *testing.T) {
	a := axis{x: 10, v: 3, p00: 4, p01: 0.5, p11: 2}
	b := a
	a.predict(0.3, 1.7)
	for range 3 {
		b.predict(0.1, 1.7)
	}
	for _, d := range [][2]float64{{a.x, b.x}, {a.v, b.v}, {a.p00, b.p00}, {a.p01, b.p01}, {a.p11, b.p11}} {
		if math.Abs(d[0]-d[1]) > 1e-9 {
			t.Fatalf("one step %+v, three steps %+v", a, b)
		}
	}
}

// On exact constant-velocity motion the filter learns the velocity and then
// predicts through a gap of missed frames.
func TestKalmanLearnsVelocity(t *testing.T) {
	box := func(tm float64) geom.Rect { return geom.Rect{X: 100 + 50*tm, Y: 200 - 20*tm, W: 40, H: 80} }
	k := newKalman(box(0), 0.05)
	dt := 0.1
	for i := 1; i <= 30; i++ {
		k.predict(dt, 0.3)
		k.update(box(float64(i)*dt), 0.05)
	}
	if vx, vy := k.ax[0].v, k.ax[1].v; math.Abs(vx-50) > 1 || math.Abs(vy+20) > 1 {
		t.Fatalf("velocity (%.2f, %.2f) px/s, want (50, -20)", vx, vy)
	}
	k.predict(1, 0.3) // a one-second gap
	if iou := k.box().IoU(box(4)); iou < 0.95 {
		t.Fatalf("prediction after a 1 s gap %v, truth %v (IoU %.3f)", k.box(), box(4), iou)
	}
	// Uncertainty grows while coasting and shrinks with a measurement.
	before := k.ax[0].p00
	k.predict(0.5, 0.3)
	grown := k.ax[0].p00
	k.update(box(4.5), 0.05)
	if !(grown > before && k.ax[0].p00 < grown) {
		t.Fatalf("variance %v -> %v (coast) -> %v (update)", before, grown, k.ax[0].p00)
	}
}
