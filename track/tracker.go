package track

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/track/internal/lap"
)

// Detection is one detector output handed to the tracker, in frame pixels.
type Detection struct {
	Box     geom.Rect
	ClassID int
	Label   string
	Score   float64
}

// Update is what one call to Tracker.Update reports.
type Update struct {
	// Tracks holds every confirmed track alive after this frame, ordered by
	// ID: matched ones (Matched true) and those coasting on their motion
	// model (Matched false) for up to MaxLost. Tentative tracks are not
	// reported: they have no ID yet.
	Tracks []Track
	// Started holds the tracks confirmed on this frame (they are in Tracks
	// too).
	Started []Track
	// Ended holds the tracks removed on this frame, as last seen: unmatched
	// for longer than MaxLost, or all of them on Flush.
	Ended []Track
	// Earlier holds, for the tracks confirmed on this frame after more than
	// one match, their matched boxes on the earlier frames while they were
	// tentative, oldest first: what an offline writer can report for those
	// frames once it knows the track is real.
	Earlier []Sighting
}

// Sighting is one matched box of a track on a frame.
type Sighting struct {
	ID uint64
	At time.Time
	// Box is what the track reported (or would have) on that frame: the
	// filtered box, or the detection with Config.Box detection.
	Box geom.Rect
	// Detection is the matched detection's box as it came from the
	// detector: what an offline smoother (Smooth) takes as the measurement.
	Detection geom.Rect
	Score     float64
}

// state is a track's place in its lifecycle.
type state uint8

const (
	tentative state = iota // too few hits to be reported yet
	confirmed              // reported; matched on the latest inferred frame
	lost                   // reported, coasting on its prediction
)

// strack is the tracker's internal record of one track.
type strack struct {
	Track
	state state
	kf    kalman
	at    time.Time // time the filter state refers to

	// The latest matched observation, for the observation-centric steps:
	// its box, the filter as it was right after folding it in, and how many
	// inferred frames have passed without a match since.
	obs    geom.Rect
	obsKF  kalman
	missed int

	// paused is time since LastSeen during which nobody looked for the
	// track (motion gating skipped the frame, or the regions left its box
	// out): it does not count towards MaxLost. looked says whether this
	// frame looked.
	paused time.Duration
	looked bool

	// early holds the matched boxes while tentative (Update.Earlier).
	early []Sighting
}

// Tracker associates detections to tracks on one stream. It is not safe for
// concurrent use: the runtime keeps one per stream and calls it from one
// goroutine.
type Tracker struct {
	cfg    Config
	tracks []*strack
	nextID uint64

	// Scratch reused across frames to keep Update allocation-light.
	high, low []int
	matched   []bool
	edges     []edge
	order     []int

	// scores learns the detector's score distribution (ScoreQuantile).
	scores scoreHist

	// cmc is CameraMotion's scratch.
	cmc cmcScratch
	// parts holds the confirmed tracks matched this frame (PartCover).
	parts []*strack
}

// scoreBins is the resolution of the score histogram behind
// Config.ScoreQuantile.
const scoreBins = 200

// minScoresForQuantile is how many detections the histogram needs before
// its quantile is trusted.
const minScoresForQuantile = 50

// scoreHist counts the stream's detection scores (those at or above
// LowScore), to learn where this detector puts its confident boxes.
type scoreHist struct {
	bins  [scoreBins]int
	total int
}

func (h *scoreHist) add(score float64) {
	b := int(score * scoreBins)
	b = min(max(b, 0), scoreBins-1)
	h.bins[b]++
	h.total++
}

// quantile returns the lower edge of the bin holding the q-quantile.
func (h *scoreHist) quantile(q float64) float64 {
	want := q * float64(h.total)
	n := 0
	for b, c := range h.bins {
		n += c
		if float64(n) > want {
			return float64(b) / scoreBins
		}
	}
	return 1
}

// New returns a tracker with cfg. An invalid cfg is not rejected here (the
// config loader calls Validate); zero fields fall back to DefaultConfig's.
func New(cfg Config) *Tracker {
	d := DefaultConfig()
	if cfg.MinHits < 1 {
		cfg.MinHits = d.MinHits
	}
	if cfg.MaxLost <= 0 {
		cfg.MaxLost = d.MaxLost
	}
	if cfg.MotionNoise <= 0 {
		cfg.MotionNoise = d.MotionNoise
	}
	if cfg.MeasurementNoise <= 0 {
		cfg.MeasurementNoise = d.MeasurementNoise
	}
	if cfg.MatchIoU <= 0 {
		cfg.MatchIoU = d.MatchIoU
	}
	if cfg.LowMatchIoU <= 0 {
		cfg.LowMatchIoU = d.LowMatchIoU
	}
	if cfg.TentativeMatchIoU <= 0 {
		cfg.TentativeMatchIoU = d.TentativeMatchIoU
	}
	return &Tracker{cfg: cfg}
}

// Update advances every track to time at and, when inferred is true,
// associates dets (this frame's detections) with them. With inferred false
// (the frame skipped inference) tracks only move along their predictions;
// they still end once unmatched for longer than MaxLost. Calls must come in
// non-decreasing time order; an earlier at is treated as no time passing.
func (t *Tracker) Update(dets []Detection, at time.Time, inferred bool) Update {
	return t.UpdateFocused(dets, at, inferred, nil)
}

// UpdateFocused is Update for a frame on which the detector looked only at
// part of the picture (motion-gated regions), or at none of it: looked
// reports whether a track's predicted box was inside what the detector saw.
// A track nobody looked for is neither counted as missed nor aged towards
// MaxLost for the time since the previous frame, so a parked car or a
// person standing keeps its track (and fires no new events) while the gate
// skips the frames it stands in. looked nil means the whole frame when
// inferred is true, and plain Update's time-based ageing otherwise.
func (t *Tracker) UpdateFocused(dets []Detection, at time.Time, inferred bool, looked func(geom.Rect) bool) Update {
	for _, s := range t.tracks {
		dt := time.Duration(0)
		if at.After(s.at) {
			dt = at.Sub(s.at)
			s.kf.predict(dt.Seconds(), t.cfg.MotionNoise)
			s.at = at
		}
		s.Box = s.kf.box()
		s.Matched = false
		s.looked = looked == nil || looked(s.Box)
		if !s.looked {
			s.paused += dt
		}
	}
	var up Update
	if inferred {
		t.associate(dets, at, &up)
	}
	t.age(at, inferred, &up)
	up.Tracks = make([]Track, 0, len(t.tracks))
	for _, s := range t.tracks {
		if s.state != tentative {
			up.Tracks = append(up.Tracks, s.Track)
		}
	}
	sort.Slice(up.Tracks, func(i, j int) bool { return up.Tracks[i].ID < up.Tracks[j].ID })
	return up
}

// Observations appends to dst, for every confirmed track matched on the
// latest Update, ordered by ID, a Sighting with the matched detection's box
// as it came (Detection) next to the track's reported Box, at the track's
// LastSeen. The live pipeline does not need it; an offline writer that
// smooths the tracks afterwards (Smooth) does. It allocates nothing when
// dst has room.
func (t *Tracker) Observations(dst []Sighting) []Sighting {
	n := len(dst)
	for _, s := range t.tracks {
		if s.Matched && s.state != tentative {
			dst = append(dst, Sighting{ID: s.ID, At: s.LastSeen, Box: s.Box, Detection: s.obs, Score: s.Score})
		}
	}
	slices.SortFunc(dst[n:], func(a, b Sighting) int { return cmp.Compare(a.ID, b.ID) })
	return dst
}

// Flush ends every track (stream end or shutdown) and returns the confirmed
// ones, ordered by ID. The tracker can be used again afterwards; IDs keep
// counting up.
func (t *Tracker) Flush() []Track {
	var ended []Track
	for _, s := range t.tracks {
		if s.state != tentative {
			s.Matched = false
			ended = append(ended, s.Track)
		}
	}
	t.tracks = t.tracks[:0]
	sort.Slice(ended, func(i, j int) bool { return ended[i].ID < ended[j].ID })
	return ended
}

// associate runs the ByteTrack passes for one inferred frame.
func (t *Tracker) associate(dets []Detection, at time.Time, up *Update) {
	cfg := t.cfg
	if cfg.ScoreQuantile > 0 {
		for _, d := range dets {
			if usable(d.Box) && d.Score >= cfg.LowScore && !math.IsNaN(d.Score) {
				t.scores.add(d.Score)
			}
		}
		if t.scores.total >= minScoresForQuantile {
			// Adaptive thresholds: the detector's own score distribution
			// says which of its boxes are confident, whatever its
			// calibration (see docs/tracking.md).
			q := t.scores.quantile(cfg.ScoreQuantile)
			cfg.HighScore = max(cfg.HighScore, q)
			cfg.NewTrackScore = max(cfg.NewTrackScore, q)
		}
	}
	t.high, t.low = t.high[:0], t.low[:0]
	for i, d := range dets {
		if !usable(d.Box) {
			continue // NaN, infinite or empty: nothing to track
		}
		switch {
		case d.Score >= cfg.HighScore:
			t.high = append(t.high, i)
		case d.Score >= cfg.LowScore:
			t.low = append(t.low, i)
		}
	}
	t.matched = slices.Grow(t.matched[:0], len(dets))[:len(dets)]
	clear(t.matched)
	if cfg.CameraMotion {
		t.compensate(dets)
	}

	var conf, tent []*strack
	for _, s := range t.tracks {
		if s.state == tentative {
			tent = append(tent, s)
		} else {
			conf = append(conf, s)
		}
	}
	// Pass 1: confirmed and lost tracks against high-score detections.
	rest := t.match(conf, dets, t.high, cfg.MatchIoU, at)
	// Pass 2: what is left of them against low-score detections: a partly
	// occluded object often scores low, and this keeps its identity.
	rest = t.match(rest, dets, t.low, cfg.LowMatchIoU, at)
	remaining := t.high[:0:0]
	for _, i := range t.high {
		if !t.matched[i] {
			remaining = append(remaining, i)
		}
	}
	// Recovery pass (OC-SORT's observation-centric recovery): tracks lost
	// for a while against what is left, by the IoU of their last observed
	// box rather than of a prediction that drifted while nothing
	// corrected it.
	if cfg.RecoverIoU > 0 && len(rest) > 0 && len(remaining) > 0 {
		t.matchLastSeen(rest, dets, remaining, cfg.RecoverIoU, at)
		remaining = slices.DeleteFunc(remaining, func(i int) bool { return t.matched[i] })
	}
	// Pass 3: tentative tracks against the remaining high-score detections.
	t.match(tent, dets, remaining, cfg.TentativeMatchIoU, at)

	// Promote tentative tracks with enough hits.
	for _, s := range tent {
		if s.Matched && s.Hits >= cfg.MinHits {
			t.confirm(s, up)
		}
	}
	// New tracks from unmatched confident detections, except those lying
	// mostly inside a track of their class matched now (PartCover): judged
	// against the tracks as associated, not the ones born below, so the
	// input order does not matter.
	t.parts = t.parts[:0]
	if cfg.PartCover > 0 {
		for _, s := range t.tracks {
			if s.Matched && s.state == confirmed {
				t.parts = append(t.parts, s)
			}
		}
	}
	for _, i := range remaining {
		d := dets[i]
		if t.matched[i] || d.Score < cfg.NewTrackScore || insideAny(d, t.parts, cfg.PartCover) {
			continue
		}
		s := &strack{
			Track: Track{ClassID: d.ClassID, Label: d.Label, Box: d.Box, Score: d.Score,
				Matched: true, Start: at, LastSeen: at, Hits: 1},
			kf:  newKalman(d.Box, cfg.MeasurementNoise),
			at:  at,
			obs: d.Box,
		}
		s.obsKF = s.kf
		t.tracks = append(t.tracks, s)
		if cfg.MinHits <= 1 || (cfg.ConfirmScore > 0 && d.Score >= cfg.ConfirmScore) {
			t.confirm(s, up)
		} else {
			s.early = append(s.early, Sighting{At: at, Box: d.Box, Detection: d.Box, Score: d.Score})
		}
	}
}

// insideAny reports whether at least frac of d's box lies inside the box of
// one of tracks of d's class (a person in front of a car is not part of it).
func insideAny(d Detection, tracks []*strack, frac float64) bool {
	for _, s := range tracks {
		if s.ClassID == d.ClassID && d.Box.Intersect(s.Box).Area() >= frac*d.Box.Area() {
			return true
		}
	}
	return false
}

// drifted reports whether a coasting track's prediction has moved its
// centre more than frac box widths from its last observation.
func drifted(s *strack, frac float64) bool {
	p, o := s.Box.Center(), s.obs.Center()
	return math.Hypot(p.X-o.X, p.Y-o.Y) > frac*s.obs.W
}

// usable reports whether b is finite with a positive size.
func usable(b geom.Rect) bool {
	for _, v := range [4]float64{b.X, b.Y, b.W, b.H} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return b.W > 0 && b.H > 0
}

func (t *Tracker) confirm(s *strack, up *Update) {
	t.nextID++
	s.ID = t.nextID
	s.state = confirmed
	s.Confirmed = true
	up.Started = append(up.Started, s.Track)
	if n := len(s.early); n > 1 {
		for _, e := range s.early[:n-1] {
			e.ID = s.ID
			up.Earlier = append(up.Earlier, e)
		}
	}
	s.early = nil
}

// age marks unmatched tracks lost and removes those past their limit.
func (t *Tracker) age(at time.Time, inferred bool, up *Update) {
	keep := t.tracks[:0]
	for _, s := range t.tracks {
		if !s.Matched && inferred && s.looked {
			s.missed++
			if s.state == confirmed {
				s.state = lost
			}
		}
		gone := at.Sub(s.LastSeen) - s.paused
		switch {
		case s.state == tentative && t.cfg.TentativeWindow > 0 && at.Sub(s.Start) > t.cfg.TentativeWindow:
			continue // too few hits in its window: never reported
		case s.state == tentative && inferred && s.looked && !s.Matched && gone > t.cfg.TentativeMaxLost:
			// Judged on inferred frames only: with sparse inference (say
			// 2 fps) a tentative track must survive the predict-only frames
			// until the detector has had a chance to see it again.
			continue // never reported, dropped silently
		case s.state != tentative && gone > t.cfg.MaxLost:
			up.Ended = append(up.Ended, s.Track)
			continue
		}
		keep = append(keep, s)
	}
	clear(t.tracks[len(keep):])
	t.tracks = keep
}

// edge is a feasible track-detection pair.
type edge struct {
	t, d int
	cost float64
}

// bigCost makes a forbidden pair costlier than any set of allowed ones
// (each allowed cost is at most 1).
const bigCost = 1e6

// match associates tracks with the detections listed in idx whose IoU with
// the track's prediction is at least minIoU and whose class agrees, as a
// min-cost assignment on 1-IoU. Matched tracks take the detection; the
// unmatched tracks are returned.
func (t *Tracker) match(tracks []*strack, dets []Detection, idx []int, minIoU float64, at time.Time) []*strack {
	if len(tracks) == 0 || len(idx) == 0 {
		return tracks
	}
	t.edges = t.feasible(tracks, dets, idx, minIoU, t.edges[:0])
	if len(t.edges) == 0 {
		return tracks
	}
	assign := solveSparse(len(tracks), len(idx), t.edges)
	var unmatched []*strack
	for ti, s := range tracks {
		k := assign[ti]
		if k < 0 {
			unmatched = append(unmatched, s)
			continue
		}
		t.take(s, dets, idx[k], at)
	}
	return unmatched
}

// take associates detection di with track s.
func (t *Tracker) take(s *strack, dets []Detection, di int, at time.Time) {
	d := dets[di]
	t.matched[di] = true
	if t.cfg.Reupdate && s.missed > 0 && at.After(s.LastSeen) {
		t.reupdate(s, d.Box, at)
	} else {
		s.kf.update(d.Box, t.cfg.MeasurementNoise)
	}
	s.obs, s.obsKF, s.missed = d.Box, s.kf, 0
	s.Box = d.Box
	if t.cfg.Box != BoxDetection {
		s.Box = s.kf.box()
	}
	s.Score = d.Score
	s.Matched = true
	s.LastSeen = at
	s.paused = 0
	s.Hits++
	if s.state == tentative {
		s.early = append(s.early, Sighting{At: at, Box: s.Box, Detection: d.Box, Score: d.Score})
	}
	if s.state == lost {
		s.state = confirmed
	}
}

// reupdate is OC-SORT's observation-centric re-update: a track found again
// after missing frames has coasted on a velocity nothing corrected, so the
// filter goes back to where it was at the last observation and is run
// through virtual observations on the straight line from that box to the
// new one, one per missed frame, ending with the real one. The velocity
// then reflects how the object actually moved during the gap.
func (t *Tracker) reupdate(s *strack, b geom.Rect, at time.Time) {
	kf := s.obsKF
	steps := s.missed + 1
	dt := at.Sub(s.LastSeen).Seconds() / float64(steps)
	for k := 1; k <= steps; k++ {
		f := float64(k) / float64(steps)
		v := geom.Rect{
			X: s.obs.X + f*(b.X-s.obs.X), Y: s.obs.Y + f*(b.Y-s.obs.Y),
			W: s.obs.W + f*(b.W-s.obs.W), H: s.obs.H + f*(b.H-s.obs.H),
		}
		kf.predict(dt, t.cfg.MotionNoise)
		kf.update(v, t.cfg.MeasurementNoise)
	}
	s.kf = kf
}

// matchLastSeen is match with each track's last observed box standing in
// for its prediction.
func (t *Tracker) matchLastSeen(tracks []*strack, dets []Detection, idx []int, minIoU float64, at time.Time) {
	for _, s := range tracks {
		s.Box = s.obs
	}
	for _, s := range t.match(tracks, dets, idx, minIoU, at) {
		s.Box = s.kf.box() // not matched: back to the prediction
	}
}

// feasible lists the allowed pairs. Detections are swept in x order so each
// track only looks at those whose x range can overlap its box: IoU is zero
// otherwise. That keeps 500 objects far from 250,000 IoUs.
func (t *Tracker) feasible(tracks []*strack, dets []Detection, idx []int, minIoU float64, out []edge) []edge {
	// order holds columns (positions in idx) sorted by their box's left edge.
	t.order = t.order[:0]
	var maxW float64
	for k, i := range idx {
		t.order = append(t.order, k)
		maxW = max(maxW, dets[i].Box.W)
	}
	x := func(k int) float64 { return dets[idx[k]].Box.X }
	slices.SortFunc(t.order, func(a, b int) int {
		switch {
		case x(a) < x(b):
			return -1
		case x(a) > x(b):
			return 1
		}
		return 0
	})
	for ti, s := range tracks {
		b := s.Box
		need := minIoU
		if s.missed > 0 && drifted(s, t.cfg.LostDrift) {
			// A track coasting since its last match has a prediction
			// nothing corrected: ask for a closer overlap before it takes a
			// detection, or it drifts onto a neighbour.
			need = max(need, t.cfg.LostMatchIoU)
		}
		from := sort.Search(len(t.order), func(k int) bool { return x(t.order[k]) >= b.X-maxW })
		for _, k := range t.order[from:] {
			d := &dets[idx[k]]
			if d.Box.X > b.Right() {
				break
			}
			if d.ClassID != s.ClassID || d.Box.Y > b.Bottom() || d.Box.Bottom() < b.Y {
				continue
			}
			if iou := b.IoU(d.Box); iou >= need {
				out = append(out, edge{t: ti, d: k, cost: 1 - iou})
			}
		}
	}
	return out
}

// solveSparse solves the assignment over the feasible edges. It splits the
// bipartite graph into connected components (usually single pairs or small
// clusters) and runs the Hungarian method on each, so cost stays near
// linear in the number of objects.
func solveSparse(nt, nd int, edges []edge) []int {
	parent := make([]int, nt+nd)
	for i := range parent {
		parent[i] = i
	}
	find := func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	for _, e := range edges {
		a, b := find(e.t), find(nt+e.d)
		if a != b {
			parent[a] = b
		}
	}
	// Group the edges by component.
	root := func(e edge) int { return find(e.t) }
	slices.SortFunc(edges, func(a, b edge) int { return root(a) - root(b) })
	assign := make([]int, nt)
	for i := range assign {
		assign[i] = -1
	}
	for lo := 0; lo < len(edges); {
		hi := lo + 1
		for hi < len(edges) && root(edges[hi]) == root(edges[lo]) {
			hi++
		}
		solveComponent(edges[lo:hi], assign)
		lo = hi
	}
	return assign
}

// solveComponent runs the Hungarian method on one connected component.
func solveComponent(es []edge, assign []int) {
	if len(es) == 1 {
		assign[es[0].t] = es[0].d
		return
	}
	var rowID, colID []int
	for _, e := range es {
		if !slices.Contains(rowID, e.t) {
			rowID = append(rowID, e.t)
		}
		if !slices.Contains(colID, e.d) {
			colID = append(colID, e.d)
		}
	}
	cost := make([][]float64, len(rowID))
	for i := range cost {
		cost[i] = make([]float64, len(colID))
		for j := range cost[i] {
			cost[i][j] = bigCost
		}
	}
	for _, e := range es {
		cost[slices.Index(rowID, e.t)][slices.Index(colID, e.d)] = e.cost
	}
	for i, j := range lap.Solve(cost) {
		if j >= 0 && cost[i][j] < bigCost {
			assign[rowID[i]] = colID[j]
		}
	}
}
