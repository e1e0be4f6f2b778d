package track

import (
	"time"

	"github.com/osprey-vision/osprey/geom"
)

// GapGate is the least squared Mahalanobis distance, over the four box
// coordinates, at which Smooth judges a detection that ends a gap
// inconsistent with the track's motion before the gap: the chi-square 95 %
// quantile for 4 degrees of freedom, the gate DeepSORT uses
// (chi2inv95[4]). Such a gap is not filled, and the smoother does not
// carry velocity across it: the two sides are smoothed apart.
const GapGate = 9.4877

// Smooth is the fixed-interval (Rauch–Tung–Striebel) smoother of the
// tracker's own motion model (cfg's MotionNoise and MeasurementNoise, the
// filter Update runs): the best estimate of a track's box at each time in
// at given all of its detections, past and future, where the live filter
// has only the past. obs are the track's matched detections
// (Sighting.Detection; Box when Detection is empty), in time order; at
// lists the times to estimate, in order, and must hold every obs time.
//
// It returns a box for every time in at and whether the box is trusted:
// true on the observed times and inside gaps the track bridged
// consistently; false inside a gap closed by a detection at or beyond
// GapGate from the prediction across it (most often a re-association with
// another object), and outside the observed span. It is an offline step:
// `pipeline track` uses it by default, the live pipeline does not.
func Smooth(cfg Config, obs []Sighting, at []time.Time) ([]geom.Rect, []bool) {
	boxes := make([]geom.Rect, len(at))
	ok := make([]bool, len(at))
	if len(obs) == 0 || len(at) == 0 {
		return boxes, ok
	}
	d := DefaultConfig()
	if cfg.MotionNoise <= 0 {
		cfg.MotionNoise = d.MotionNoise
	}
	if cfg.MeasurementNoise <= 0 {
		cfg.MeasurementNoise = d.MeasurementNoise
	}
	meas := func(s Sighting) geom.Rect {
		if s.Detection.W > 0 && s.Detection.H > 0 {
			return s.Detection
		}
		return s.Box
	}
	// Forward pass: the filter after each time's prediction (pred) and
	// after its update (filt); restart marks a time where the filter starts
	// afresh (first observation, or one beyond the gate after a gap).
	type step struct {
		pred, filt kalman
		dt         float64
		observed   bool
		restart    bool
	}
	st := make([]step, len(at))
	first, last := -1, -1
	k := 0
	var kf kalman
	gap := false
	for i, ti := range at {
		for k < len(obs) && obs[k].At.Before(ti) {
			k++ // an observation between the times asked for: skipped
		}
		hit := k < len(obs) && obs[k].At.Equal(ti)
		if first < 0 {
			if !hit {
				continue
			}
			first = i
			kf = newKalman(meas(obs[k]), cfg.MeasurementNoise)
			st[i] = step{pred: kf, filt: kf, observed: true, restart: true}
			last, k = i, k+1
			continue
		}
		dt := ti.Sub(at[i-1]).Seconds()
		kf.predict(dt, cfg.MotionNoise)
		st[i].pred, st[i].dt = kf, dt
		if hit {
			b := meas(obs[k])
			if gap && kf.mahalanobis2(b, cfg.MeasurementNoise) >= GapGate {
				kf = newKalman(b, cfg.MeasurementNoise)
				st[i].restart = true
			} else {
				kf.update(b, cfg.MeasurementNoise)
			}
			st[i].observed = true
			gap = false
			last, k = i, k+1
		} else {
			gap = true
		}
		st[i].filt = kf
	}
	if first < 0 {
		return boxes, ok
	}
	// Backward pass.
	sm := st[last].filt
	boxes[last], ok[last] = sm.box(), true
	trusted := true // whether the times after i up to the next observation are a bridged gap
	for i := last - 1; i >= first; i-- {
		nx := st[i+1]
		if nx.restart {
			sm = st[i].filt
			trusted = false
		} else {
			sm = rtsStep(st[i].filt, nx.pred, sm, nx.dt)
		}
		if st[i+1].observed {
			trusted = !nx.restart
		}
		boxes[i] = sm.box()
		ok[i] = st[i].observed || trusted
	}
	return boxes, ok
}

// mahalanobis2 is the squared Mahalanobis distance of measurement b from
// the filter's prediction (the innovation over its covariance, the four
// coordinates being independent in this filter).
func (k *kalman) mahalanobis2(b geom.Rect, measNoise float64) float64 {
	z := boxState(b)
	var d2 float64
	for i := range k.ax {
		y := z[i] - k.ax[i].x
		d2 += y * y / (k.ax[i].p00 + sq(measNoise*scaleFor(i, z)))
	}
	return d2
}

// rtsStep is one Rauch–Tung–Striebel step per axis: filt is the filter at
// time k, pred its prediction to time k+1 (dt later), next the smoothed
// state at k+1; it returns the smoothed state at k.
func rtsStep(filt, pred, next kalman, dt float64) kalman {
	out := filt
	for i := range out.ax {
		f, p, n := filt.ax[i], pred.ax[i], next.ax[i]
		det := p.p00*p.p11 - p.p01*p.p01
		if !(det > 0) {
			continue // degenerate prediction: keep the filtered state
		}
		// C = Pf Fᵀ Pp⁻¹ with F = [[1, dt], [0, 1]].
		a00, a01 := f.p00+dt*f.p01, f.p01
		a10, a11 := f.p01+dt*f.p11, f.p11
		i00, i01, i11 := p.p11/det, -p.p01/det, p.p00/det
		c00, c01 := a00*i00+a01*i01, a00*i01+a01*i11
		c10, c11 := a10*i00+a11*i01, a10*i01+a11*i11
		dx, dv := n.x-p.x, n.v-p.v
		out.ax[i].x = f.x + c00*dx + c01*dv
		out.ax[i].v = f.v + c10*dx + c11*dv
	}
	return out
}
