package track

import "slices"

// Camera-motion compensation from the detections alone (Config.CameraMotion).
const (
	// cmcPairIoU is the least IoU for a reliable track's prediction and a
	// detection to count as the same object when measuring the shift.
	cmcPairIoU = 0.3
	// cmcMinPairs is how many such pairs must agree: one pair is only that
	// track's own innovation, not the picture's.
	cmcMinPairs = 2
)

// compensate is BoT-SORT's camera-motion compensation with the image
// registration replaced by the detections. Tracks matched on the previous
// inferred frame with at least MinHits hits have trustworthy predictions;
// each is paired with the high-score detection it overlaps best when that
// detection also overlaps it best. Over those pairs the median offset
// between prediction and detection, in box sizes (a camera that moves
// sideways shifts near, large boxes more than far, small ones), is what the
// objects share this frame: the picture's own motion. The tracks that
// missed the last inferred frame get that offset on their position and the
// median velocity correction the pairs' own filters are about to make on
// their speed, as if they had been seen moving with the picture: nothing
// else corrects their prediction. Tracks matched last frame are left to
// their own detection, which corrects them with less noise than a median
// over a few boxes.
func (t *Tracker) compensate(dets []Detection) {
	c := &t.cmc
	c.rel = c.rel[:0]
	for _, s := range t.tracks {
		if s.state == confirmed && s.missed == 0 && s.Hits >= t.cfg.MinHits {
			c.rel = append(c.rel, s)
		}
	}
	if len(c.rel) < cmcMinPairs || len(t.high) < cmcMinPairs {
		return
	}
	t.edges = t.feasible(c.rel, dets, t.high, cmcPairIoU, t.edges[:0])
	// Mutual best pairs: the best edge of each track, kept when it is also
	// the best edge of its detection.
	c.bestT = fill(c.bestT, len(c.rel))
	c.bestD = fill(c.bestD, len(t.high))
	for i, e := range t.edges {
		if j := c.bestT[e.t]; j < 0 || e.cost < t.edges[j].cost {
			c.bestT[e.t] = i
		}
		if j := c.bestD[e.d]; j < 0 || e.cost < t.edges[j].cost {
			c.bestD[e.d] = i
		}
	}
	c.dx, c.dy, c.vx, c.vy = c.dx[:0], c.dy[:0], c.vx[:0], c.vy[:0]
	for ti, i := range c.bestT {
		if i < 0 || c.bestD[t.edges[i].d] != i {
			continue
		}
		s := c.rel[ti]
		p, d := s.Box, dets[t.high[t.edges[i].d]].Box
		pc, dc := p.Center(), d.Center()
		ox, oy := (dc.X-pc.X)/p.W, (dc.Y-pc.Y)/p.H
		c.dx = append(c.dx, ox)
		c.dy = append(c.dy, oy)
		// The share of the offset the track's filter will put into its
		// velocity (per second, in box sizes), with the update's own
		// measurement noise.
		c.vx = append(c.vx, s.kf.ax[0].velocityGain(sq(t.cfg.MeasurementNoise*d.W))*ox)
		c.vy = append(c.vy, s.kf.ax[1].velocityGain(sq(t.cfg.MeasurementNoise*d.H))*oy)
	}
	if len(c.dx) < cmcMinPairs {
		return
	}
	mx, my := median(c.dx), median(c.dy)
	mvx, mvy := median(c.vx), median(c.vy)
	for _, s := range t.tracks {
		if s.missed == 0 {
			continue
		}
		w, h := s.Box.W, s.Box.H
		s.kf.shift(mx*w, my*h, mvx*w, mvy*h)
		// The last observation moves with the picture too, so recovery and
		// the drift bound compare boxes in this frame's coordinates.
		s.obsKF.shift(mx*w, my*h, 0, 0)
		s.obs.X += mx * w
		s.obs.Y += my * h
		s.Box = s.kf.box()
	}
}

// cmcScratch is compensate's per-frame scratch, reused across frames.
type cmcScratch struct {
	rel            []*strack
	bestT, bestD   []int
	dx, dy, vx, vy []float64
}

// fill returns v resized to n with every element -1.
func fill(v []int, n int) []int {
	v = slices.Grow(v[:0], n)[:n]
	for i := range v {
		v[i] = -1
	}
	return v
}

// shift moves the filter's box centre by (sx, sy) pixels and changes its
// velocity by (vx, vy) pixels per second.
func (k *kalman) shift(sx, sy, vx, vy float64) {
	k.ax[0].x += sx
	k.ax[1].x += sy
	k.ax[0].v += vx
	k.ax[1].v += vy
}

// velocityGain is the Kalman gain of the velocity for a measurement of
// variance r: how much of an innovation the update puts into the speed.
func (a *axis) velocityGain(r float64) float64 { return a.p01 / (a.p00 + r) }

// median returns the median of v, reordering it; v must not be empty.
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
