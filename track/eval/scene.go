package eval

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/track"
)

// SceneConfig describes a synthetic scene. All randomness comes from Seed,
// so a scene is reproducible.
type SceneConfig struct {
	Seed          uint64
	Frames        int
	FPS           float64
	Width, Height float64
	// Objects is how many objects pass through the scene in total.
	Objects int
	// Lanes keeps objects in separate horizontal lanes moving without
	// crossing (the "no identity excuse" set); otherwise they move in random
	// directions, some turning, and cross and occlude each other.
	Lanes bool
	// TurnRate is the largest turning speed in radians per second.
	TurnRate float64
	// BoxNoise is the detector's box noise: standard deviation as a fraction
	// of the box size.
	BoxNoise float64
	// MissMin and MissMax bound each object's miss rate (drawn uniformly).
	MissMin, MissMax float64
	// LowScoreRate is the fraction of true detections given a low score
	// (below the tracker's high threshold), as partly occluded objects get.
	LowScoreRate float64
	// FalsePositives is the mean number of false detections per frame.
	FalsePositives float64
	// DetectEvery runs the detector on every Nth frame only; the frames in
	// between are predict-only for the tracker (0 or 1: every frame).
	DetectEvery int
}

// SceneFrame is one frame of a scene: its time, the ground truth (boxes
// clipped to the frame) and what the simulated detector reported.
type SceneFrame struct {
	At       time.Time
	GT       []Object
	Dets     []track.Detection
	Inferred bool
	// Crossing marks the ground-truth IDs whose box overlaps another
	// object's on this frame.
	Crossing map[uint64]bool
}

// Scene is a generated sequence.
type Scene struct {
	Config SceneConfig
	Frames []SceneFrame
}

type simObject struct {
	id             uint64
	spawn          int
	x, y, w, h     float64 // centre and size, pixels
	speed, heading float64 // px/s, radians
	turn           float64 // rad/s
	missRate       float64
	depth          float64 // larger is nearer the camera
	class          int
	wobble, phase  float64 // lane objects sway vertically a little
}

var labels = []string{"person", "car"}

// Generate builds the scene described by c.
func Generate(c SceneConfig) Scene {
	r := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	dt := 1 / c.FPS
	objs := make([]*simObject, c.Objects)
	laneCount := max(1, int(c.Height/110))
	for i := range objs {
		o := &simObject{id: uint64(i + 1), missRate: c.MissMin + r.Float64()*(c.MissMax-c.MissMin), depth: r.Float64()}
		o.class = 0
		if r.Float64() < 0.25 {
			o.class = 1
		}
		o.w = 30 + r.Float64()*40
		o.h = o.w * (1.6 + r.Float64()*0.8)
		if o.class == 1 {
			o.w, o.h = o.h*1.2, o.w
		}
		o.speed = 40 + r.Float64()*110
		// Spread entries over the first 70% of the sequence.
		o.spawn = int(float64(c.Frames) * 0.7 * float64(i) / float64(max(1, c.Objects)))
		if c.Lanes {
			lane := i % laneCount
			o.h = math.Min(o.h, 80)
			o.w = math.Min(o.w, 60)
			o.y = (float64(lane) + 0.5) * c.Height / float64(laneCount)
			// All objects in a lane share its direction and speed, so they
			// never catch up with each other.
			o.speed = 50 + 15*float64(lane)
			if lane%2 == 0 {
				o.x, o.heading = -o.w/2+1, 0
			} else {
				o.x, o.heading = c.Width+o.w/2-1, math.Pi
			}
			o.wobble, o.phase = 4, r.Float64()*2*math.Pi
		} else {
			// Enter from a random edge heading roughly across the frame.
			switch r.IntN(4) {
			case 0:
				o.x, o.y = 1, c.Height*(0.15+0.7*r.Float64())
			case 1:
				o.x, o.y = c.Width-1, c.Height*(0.15+0.7*r.Float64())
			case 2:
				o.x, o.y = c.Width*(0.15+0.7*r.Float64()), 1
			default:
				o.x, o.y = c.Width*(0.15+0.7*r.Float64()), c.Height-1
			}
			to := geom.Point{X: c.Width * (0.3 + 0.4*r.Float64()), Y: c.Height * (0.3 + 0.4*r.Float64())}
			o.heading = math.Atan2(to.Y-o.y, to.X-o.x)
			if r.Float64() < 0.4 {
				o.turn = (2*r.Float64() - 1) * c.TurnRate
			}
		}
		objs[i] = o
	}

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	every := max(1, c.DetectEvery)
	sc := Scene{Config: c, Frames: make([]SceneFrame, c.Frames)}
	for f := range c.Frames {
		fr := SceneFrame{At: start.Add(time.Duration(float64(f) * dt * float64(time.Second))), Inferred: f%every == 0, Crossing: map[uint64]bool{}}
		var live []*simObject
		var boxes []geom.Rect
		for _, o := range objs {
			if f < o.spawn {
				continue
			}
			if f > o.spawn {
				o.heading += o.turn * dt
				o.x += o.speed * math.Cos(o.heading) * dt
				o.y += o.speed * math.Sin(o.heading) * dt
			}
			y := o.y + o.wobble*math.Sin(o.phase+float64(f)*dt*2)
			if o.x < -o.w || o.x > c.Width+o.w || y < -o.h || y > c.Height+o.h {
				continue
			}
			b := geom.Rect{X: o.x - o.w/2, Y: y - o.h/2, W: o.w, H: o.h}
			// Ground truth: the visible part of the box, once at least half
			// of it is inside the frame.
			cb := b.Clamp(c.Width, c.Height)
			if cb.Area() < 0.5*b.Area() {
				continue
			}
			live = append(live, o)
			boxes = append(boxes, cb)
			fr.GT = append(fr.GT, Object{ID: o.id, Box: cb})
		}
		for i, o := range live {
			// Occlusion: an object mostly covered by a nearer one is not
			// detected; a partly covered one scores low.
			covered := 0.0
			for j, p := range live {
				if i == j {
					continue
				}
				inter := boxes[i].Intersect(boxes[j]).Area() / boxes[i].Area()
				if inter > 0 {
					fr.Crossing[o.id] = true
				}
				if p.depth > o.depth {
					covered = math.Max(covered, inter)
				}
			}
			if !fr.Inferred || covered > 0.6 || r.Float64() < o.missRate {
				continue
			}
			b := boxes[i]
			nb := geom.Rect{
				X: b.X + r.NormFloat64()*c.BoxNoise*b.W, Y: b.Y + r.NormFloat64()*c.BoxNoise*b.H,
				W: b.W * (1 + r.NormFloat64()*c.BoxNoise), H: b.H * (1 + r.NormFloat64()*c.BoxNoise),
			}
			score := 0.6 + 0.35*r.Float64()
			if covered > 0.3 || r.Float64() < c.LowScoreRate {
				score = 0.15 + 0.35*r.Float64()
			}
			fr.Dets = append(fr.Dets, track.Detection{Box: nb, ClassID: o.class, Label: labels[o.class], Score: score})
		}
		if fr.Inferred {
			for range poisson(r, c.FalsePositives) {
				w := 20 + r.Float64()*60
				h := w * (0.5 + r.Float64()*1.5)
				cls := r.IntN(len(labels))
				fr.Dets = append(fr.Dets, track.Detection{
					Box:     geom.Rect{X: r.Float64() * (c.Width - w), Y: r.Float64() * (c.Height - h), W: w, H: h},
					ClassID: cls, Label: labels[cls], Score: 0.1 + 0.6*r.Float64(),
				})
			}
			r.Shuffle(len(fr.Dets), func(i, j int) { fr.Dets[i], fr.Dets[j] = fr.Dets[j], fr.Dets[i] })
		}
		sc.Frames[f] = fr
	}
	return sc
}

// poisson draws a Poisson-distributed count with mean m (Knuth's method;
// m is small here).
func poisson(r *rand.Rand, m float64) int {
	if m <= 0 {
		return 0
	}
	l, k, p := math.Exp(-m), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// Run feeds the scene to a new tracker with cfg and evaluates its output:
// every reported (confirmed) track, matched or coasting, clipped to the
// frame by the ground truth's rule (kept while at least half of the box is
// inside).
func Run(sc Scene, cfg track.Config) (Result, []Frame) {
	tr := track.New(cfg)
	frames := make([]Frame, len(sc.Frames))
	for i, f := range sc.Frames {
		up := tr.Update(f.Dets, f.At, f.Inferred)
		var hyp []Object
		for _, t := range up.Tracks {
			b := t.Box.Clamp(sc.Config.Width, sc.Config.Height)
			if b.Area() > 0 && b.Area() >= 0.5*t.Box.Area() {
				hyp = append(hyp, Object{ID: t.ID, Box: b})
			}
		}
		frames[i] = Frame{GT: f.GT, Hyp: hyp}
	}
	return Evaluate(frames, 0.5), frames
}

// Preset returns one of the named scene configurations used by the tests and
// docs/tracking.md: "clean" (exact boxes, no misses), "noisy" (5% box noise,
// 10-30% misses, low scores, false positives, turning and crossing objects),
// "lanes" (the noisy detector on objects that never cross), "skip" (noisy,
// detector on every 3rd frame only) and "lowfps" (noisy at 10 fps). The
// boolean is false for an unknown name.
func Preset(name string, seed uint64) (SceneConfig, bool) {
	c := SceneConfig{
		Seed: seed, Frames: 600, FPS: 30, Width: 1280, Height: 720, Objects: 40,
		TurnRate: 0.5, BoxNoise: 0.05, MissMin: 0.1, MissMax: 0.3,
		LowScoreRate: 0.1, FalsePositives: 1,
	}
	switch name {
	case "clean":
		c.BoxNoise, c.MissMin, c.MissMax, c.LowScoreRate, c.FalsePositives = 0, 0, 0, 0, 0
	case "noisy":
	case "lanes":
		c.Lanes = true
	case "skip":
		c.DetectEvery = 3
	case "lowfps":
		c.FPS, c.Frames = 10, 200
	default:
		return c, false
	}
	return c, true
}

// PresetNames lists the names Preset knows, in report order.
var PresetNames = []string{"clean", "noisy", "lanes", "skip", "lowfps"}
