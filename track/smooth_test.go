package track

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/geom"
)

// walk is an object moving right 30 px/s and growing 5 px/s, at 10 fps.
func walk(i int) geom.Rect {
	s := float64(i) / 10
	return geom.Rect{X: 100 + 30*s, Y: 50, W: 40 + 5*s, H: 100 + 12*s}
}

// The smoother is closer to the truth than the detections and than the
// live filter, fills a gap on the object's path, and trusts nothing
// outside the observed span.
func TestSmooth(t *testing.T) {
	cfg := DefaultConfig()
	r := rand.New(rand.NewPCG(1, 2))
	var obs []Sighting
	var at []time.Time
	kf := kalman{}
	var errDet, errLive, errSmooth float64
	live := map[int]geom.Rect{}
	for i := range 40 {
		ti := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		at = append(at, ti)
		if i >= 20 && i < 25 {
			continue // a gap of 5 frames
		}
		b := walk(i)
		d := geom.Rect{X: b.X + 3*r.NormFloat64(), Y: b.Y + 3*r.NormFloat64(), W: b.W + 2*r.NormFloat64(), H: b.H + 4*r.NormFloat64()}
		obs = append(obs, Sighting{At: ti, Detection: d, Box: geom.Rect{X: -1, W: 1, H: 1}})
		if i == 0 {
			kf = newKalman(d, cfg.MeasurementNoise)
		} else {
			kf.predict(at[i].Sub(at[i-1]).Seconds(), cfg.MotionNoise)
			kf.update(d, cfg.MeasurementNoise)
		}
		live[i] = kf.box()
		if i >= 5 {
			errDet += 1 - d.IoU(b)
		}
	}
	// One time before the first observation: not trusted.
	boxes, ok := Smooth(cfg, obs, append([]time.Time{t0.Add(-time.Second)}, at...))
	if ok[0] {
		t.Fatal("a time before the first observation is trusted")
	}
	boxes, ok = boxes[1:], ok[1:]
	for i := range at {
		if !ok[i] {
			t.Fatalf("frame %d not trusted", i)
		}
		u := boxes[i].IoU(walk(i))
		if i >= 20 && i < 25 && u < 0.9 {
			t.Errorf("gap frame %d: IoU %.3f with the truth, want >= 0.9", i, u)
		}
		if lb, seen := live[i]; seen && i >= 5 {
			errLive += 1 - lb.IoU(walk(i))
			errSmooth += 1 - u
		}
	}
	if !(errSmooth < errLive && errLive < errDet) {
		t.Errorf("mean 1-IoU: smoothed %.4f, live filter %.4f, detections %.4f; want increasing", errSmooth/30, errLive/30, errDet/30)
	}
	// Detection (not Box) is the measurement.
	if boxes[0].X < 90 {
		t.Errorf("first box %v: the smoother used Box, not Detection", boxes[0])
	}
}

// A gap closed far off the motion model (another object's box) is not
// filled, and neither side is pulled towards the other.
func TestSmoothGate(t *testing.T) {
	var obs []Sighting
	var at []time.Time
	for i := range 20 {
		ti := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		at = append(at, ti)
		if i >= 10 && i < 13 {
			continue
		}
		b := walk(i)
		if i >= 13 {
			b.X += 120 // three widths off
		}
		obs = append(obs, Sighting{At: ti, Detection: b})
	}
	boxes, ok := Smooth(DefaultConfig(), obs, at)
	for i := range at {
		want := walk(i)
		if i >= 13 {
			want.X += 120
		}
		switch {
		case i >= 10 && i < 13:
			if ok[i] {
				t.Errorf("frame %d in the gap trusted (%v)", i, boxes[i])
			}
		case !ok[i] || boxes[i].IoU(want) < 0.95:
			t.Errorf("frame %d: %v (ok %v), want near %v", i, boxes[i], ok[i], want)
		}
	}
	// The same gap closed on the path is filled.
	for k := range obs {
		if obs[k].At.After(at[12]) {
			obs[k].Detection.X -= 120
		}
	}
	_, ok = Smooth(DefaultConfig(), obs, at)
	for i := 10; i < 13; i++ {
		if !ok[i] {
			t.Errorf("frame %d of a gap on the path not trusted", i)
		}
	}
	if b, ok := Smooth(DefaultConfig(), nil, at); len(b) != len(at) || ok[0] {
		t.Error("no observations: want untrusted boxes")
	}
	if math.IsNaN(boxes[0].X) {
		t.Error("NaN box")
	}
}

// Observations gives the matched confirmed tracks' detections as they came.
func TestObservations(t *testing.T) {
	cfg := DefaultConfig()
	tr := New(cfg)
	var got []Sighting
	for i := range 3 {
		d := det(10+5*float64(i), 10, 0.95)
		tr.Update([]Detection{d, det(400, 10, 0.2)}, t0.Add(time.Duration(i)*100*time.Millisecond), true)
		got = tr.Observations(got[:0])
		if len(got) != 1 || got[0].ID != 1 || got[0].Detection != d.Box || got[0].Score != 0.95 {
			t.Fatalf("frame %d: %+v, want track 1 with detection %v", i, got, d.Box)
		}
		if i > 0 && got[0].Box == d.Box {
			t.Errorf("frame %d: Box is the detection, want the filtered box", i)
		}
	}
	tr.Update(nil, t0.Add(300*time.Millisecond), true)
	if got = tr.Observations(got[:0]); len(got) != 0 {
		t.Fatalf("nothing matched: %+v", got)
	}
}
