// Package sort is SORT (Bewley et al., "Simple Online and Realtime
// Tracking", ICIP 2016) as its paper and reference code describe it, kept as
// the baseline Osprey's tracker is measured against: a constant-velocity
// Kalman filter on (x, y, s, r) (box centre, area, aspect ratio), frame-based
// (dt = 1 frame), IoU association solved with the Hungarian method and
// rejected below an IoU of 0.3, tracks deleted after max_age = 1 frame
// without a detection, and a box reported only on frames where its track
// was matched and has min_hits = 3 consecutive hits (or in the first
// min_hits frames of the sequence).
//
// It is a test helper: the evaluation runs it on the same detections as
// Osprey's tracker. Nothing in the pipeline uses it.
package sort

import (
	"math"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/track/internal/lap"
)

// Config holds SORT's three parameters.
type Config struct {
	MaxAge       int
	MinHits      int
	IoUThreshold float64
}

// DefaultConfig returns the published settings: max_age 1, min_hits 3,
// IoU threshold 0.3.
func DefaultConfig() Config { return Config{MaxAge: 1, MinHits: 3, IoUThreshold: 0.3} }

// Box is one reported track box.
type Box struct {
	ID  uint64
	Box geom.Rect
}

// Tracker is one SORT instance; feed it every frame in order.
type Tracker struct {
	cfg    Config
	tracks []*kbt
	frame  int
	nextID uint64
}

// New returns a SORT tracker.
func New(cfg Config) *Tracker { return &Tracker{cfg: cfg} }

// kbt is the reference code's KalmanBoxTracker.
type kbt struct {
	kf                    filter
	id                    uint64
	timeSinceUpdate, hits int
	hitStreak             int
}

// Update takes one frame's detections (SORT uses every box it is given, no
// score threshold) and returns the boxes it reports for that frame.
func (t *Tracker) Update(dets []geom.Rect) []Box {
	t.frame++
	// Predict; drop tracks whose prediction is not a number.
	preds := make([]geom.Rect, 0, len(t.tracks))
	keep := t.tracks[:0]
	for _, k := range t.tracks {
		b := k.predict()
		if !finite(b) {
			continue
		}
		keep = append(keep, k)
		preds = append(preds, b)
	}
	t.tracks = keep

	matchedDet := make([]bool, len(dets))
	for _, m := range associate(dets, preds, t.cfg.IoUThreshold) {
		t.tracks[m[1]].update(dets[m[0]])
		matchedDet[m[0]] = true
	}
	for i, d := range dets {
		if !matchedDet[i] {
			t.nextID++
			t.tracks = append(t.tracks, &kbt{kf: newFilter(d), id: t.nextID})
		}
	}
	var out []Box
	keep = t.tracks[:0]
	for _, k := range t.tracks {
		if k.timeSinceUpdate < 1 && (k.hitStreak >= t.cfg.MinHits || t.frame <= t.cfg.MinHits) {
			out = append(out, Box{ID: k.id, Box: k.kf.box()})
		}
		if k.timeSinceUpdate <= t.cfg.MaxAge {
			keep = append(keep, k)
		}
	}
	t.tracks = keep
	return out
}

func (k *kbt) predict() geom.Rect {
	k.kf.predict()
	if k.timeSinceUpdate > 0 {
		k.hitStreak = 0
	}
	k.timeSinceUpdate++
	return k.kf.box()
}

func (k *kbt) update(d geom.Rect) {
	k.timeSinceUpdate = 0
	k.hits++
	k.hitStreak++
	k.kf.update(d)
}

// associate returns (detection, track) pairs: when every detection and
// track overlaps at most one partner above the threshold those pairs are
// taken as they are, otherwise the Hungarian method maximises the total IoU;
// pairs below the threshold are then dropped, as in the reference code.
func associate(dets, preds []geom.Rect, thr float64) [][2]int {
	if len(dets) == 0 || len(preds) == 0 {
		return nil
	}
	iou := make([][]float64, len(dets))
	rowHits := make([]int, len(dets))
	colHits := make([]int, len(preds))
	for i, d := range dets {
		iou[i] = make([]float64, len(preds))
		for j, p := range preds {
			iou[i][j] = iouSORT(d, p)
			if iou[i][j] > thr {
				rowHits[i]++
				colHits[j]++
			}
		}
	}
	single := true
	for _, n := range rowHits {
		single = single && n <= 1
	}
	for _, n := range colHits {
		single = single && n <= 1
	}
	var pairs [][2]int
	if single {
		for i := range dets {
			for j := range preds {
				if iou[i][j] > thr {
					pairs = append(pairs, [2]int{i, j})
				}
			}
		}
		return pairs
	}
	cost := make([][]float64, len(dets))
	for i := range cost {
		cost[i] = make([]float64, len(preds))
		for j := range cost[i] {
			cost[i][j] = -iou[i][j]
		}
	}
	for i, j := range lap.Solve(cost) {
		if j >= 0 && iou[i][j] >= thr {
			pairs = append(pairs, [2]int{i, j})
		}
	}
	return pairs
}

// iouSORT is the reference code's iou_batch: corner boxes, no +1.
func iouSORT(a, b geom.Rect) float64 {
	w := math.Max(0, math.Min(a.Right(), b.Right())-math.Max(a.X, b.X))
	h := math.Max(0, math.Min(a.Bottom(), b.Bottom())-math.Max(a.Y, b.Y))
	inter := w * h
	u := a.W*a.H + b.W*b.H - inter
	if u <= 0 {
		return 0
	}
	return inter / u
}

func finite(b geom.Rect) bool {
	for _, v := range [4]float64{b.X, b.Y, b.W, b.H} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
