package vtest

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"io"
	"log/slog"
	"math"
	"os"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/analytics"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/track"
)

const vtestPath = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

var (
	ssdPath    = flag.String("ssd", "../../../models/ssd_mobilenet_v2_coco.onnx", "COCO SSD ONNX model (from pipeline model import)")
	run        = flag.Bool("vtest", false, "run the vtest.avi stability test (SSD on every frame: 1-2 minutes on 2 shared cores)")
	maxFrames  = flag.Int("vtest.frames", 0, "frames of vtest.avi to process (0: all 795)")
	annotate   = flag.String("vtest.annotate", "", "write an annotated JPEG of one frame here (zone, line, track IDs)")
	detsCache  = flag.String("vtest.dets", "", "JSON file caching the detections: written if missing, read (skipping the detector) if present")
	synthetic  = flag.Bool("vtest.synthetic", false, "track with track.SyntheticConfig (the earlier defaults) instead of DefaultConfig, for before/after figures")
	override   = flag.String("vtest.config", "", `settings over DefaultConfig as a JSON object with the Config field names, e.g. {"CameraMotion":true}, for before/after figures`)
	annotateAt = flag.Int("vtest.annotate.frame", 300, "frame to annotate")
	demoConfig = analytics.Config{
		// The walkway runs left-right across the middle of the image. The
		// line is drawn bottom to top, so walking left to right is "in".
		Lines: []analytics.Line{{Name: "walkway", Stream: "vtest", From: [2]float64{0.45, 0.62}, To: [2]float64{0.45, 0.22}}},
		Zones: []analytics.Zone{{Name: "junction", Stream: "vtest", LoiterAfter: 5 * time.Second,
			Polygon: [][2]float64{{0.62, 0.26}, {0.92, 0.2}, {0.98, 0.5}, {0.66, 0.55}}}},
	}
)

// stats holds the stability figure. A "re-ID" is a track confirmed near
// where another track was last matched less than 2 s before, and which is
// not matched now (coasting or ended): centres closer than 3/4 of the old
// box's height. Most such cases are the same person under a new ID, so the
// count is an upper-bound proxy for ID switches where no ground truth
// exists.
type stats struct {
	frames, tracks, reIDs, personBoxes, matchedBoxes int
	trackSeconds                                     float64
}

func TestVtestStability(t *testing.T) {
	if !*run {
		t.Skip("pass -vtest to run the SSD over vtest.avi (1-2 minutes on 2 shared cores)")
	}
	realpart.File(t, realpart.SSDModel, *ssdPath)
	matcheck.Leaks(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Confidence 0.2: the tracker's second pass wants the low scores.
	det, err := infer.Open(infer.Config{Path: *ssdPath, Format: "ssd", Labels: "coco", Confidence: 0.2, Classes: []string{"person"}}, quiet)
	if errors.Is(err, infer.ErrNoRuntime) {
		realpart.Missing(t, realpart.ORT, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	if err := demoConfig.Validate([]string{"vtest"}); err != nil {
		t.Fatal(err)
	}

	realpart.File(t, realpart.SampleVideo, vtestPath)
	vc, err := gocv.VideoCaptureFile(vtestPath)
	if err != nil {
		t.Fatalf("open %s: %v", vtestPath, err)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()

	var cached, record [][]track.Detection
	if *detsCache != "" {
		if b, err := os.ReadFile(*detsCache); err == nil {
			if err := json.Unmarshal(b, &cached); err != nil {
				t.Fatalf("%s: %v", *detsCache, err)
			}
		}
	}
	cfg := track.DefaultConfig()
	if *synthetic {
		cfg = track.SyntheticConfig()
	}
	if *override != "" {
		if err := json.Unmarshal([]byte(*override), &cfg); err != nil {
			t.Fatalf("-vtest.config: %v", err)
		}
	}
	tr := track.New(cfg)
	en := analytics.New(demoConfig, "demo", "vtest")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type seen struct {
		box geom.Rect
		at  time.Time
	}
	lastMatched := map[uint64]seen{}
	var st stats
	var evs []event.Event
	var trackTime time.Duration
	for vc.Read(&img) && !img.Empty() && (*maxFrames == 0 || st.frames < *maxFrames) {
		at := start.Add(time.Duration(st.frames) * 100 * time.Millisecond)
		st.frames++
		var dets []track.Detection
		if cached != nil {
			if st.frames <= len(cached) {
				dets = cached[st.frames-1]
			}
		} else {
			found, err := det.DetectImage(img)
			if err != nil {
				t.Fatal(err)
			}
			dets = make([]track.Detection, len(found))
			for i, d := range found {
				dets[i] = track.Detection{Box: d.Box, ClassID: d.ClassID, Label: d.Label, Score: float64(d.Confidence)}
			}
			record = append(record, dets)
		}
		up := tr.Update(dets, at, true)
		matchedNow := map[uint64]bool{}
		for _, tk := range up.Tracks {
			if tk.Matched {
				matchedNow[tk.ID] = true
			}
		}
		for _, s := range up.Started {
			for id, old := range lastMatched {
				c, o := s.Box.Center(), old.box.Center()
				if !matchedNow[id] && at.Sub(old.at) <= 2*time.Second && math.Hypot(c.X-o.X, c.Y-o.Y) < 0.75*old.box.H {
					st.reIDs++
					break
				}
			}
		}
		for _, tk := range up.Tracks {
			if tk.Matched {
				lastMatched[tk.ID] = seen{tk.Box, at}
			}
		}
		for _, e := range up.Ended {
			trackTime += e.Duration()
		}
		st.tracks += len(up.Started)
		st.personBoxes += len(dets)
		for _, tk := range up.Tracks {
			if tk.Matched {
				st.matchedBoxes++
			}
		}
		evs = append(evs, en.Update(up.Tracks, up.Started, up.Ended, img.Cols(), img.Rows(), uint64(st.frames), at)...)
		if *annotate != "" && st.frames == *annotateAt {
			c := en.Counts()
			l, z := c.Lines["walkway"], c.Zones["junction"]
			caption := fmt.Sprintf("frame %d  walkway in %d out %d  junction occupancy %d", st.frames, l.In, l.Out, z.Occupancy)
			writeAnnotated(t, img, up.Tracks, caption, *annotate)
		}
	}
	if *detsCache != "" && cached == nil {
		b, _ := json.Marshal(record)
		if err := os.WriteFile(*detsCache, b, 0o644); err != nil {
			t.Errorf("writing detection cache: %v", err)
		}
	}
	ended := tr.Flush()
	for _, e := range ended {
		trackTime += e.Duration()
	}
	evs = append(evs, en.Update(nil, nil, ended, img.Cols(), img.Rows(), uint64(st.frames+1), start.Add(time.Duration(st.frames)*100*time.Millisecond))...)

	for _, e := range evs {
		b, _ := json.Marshal(e)
		if err := event.Validate(b); err != nil {
			t.Errorf("event does not match the schema: %s: %v", b, err)
		}
	}
	per100 := 100 * float64(st.reIDs) / float64(st.frames)
	t.Logf("vtest.avi: %d frames, %d person detections, %d tracks (mean %.1f s), %d re-IDs = %.2f per 100 frames",
		st.frames, st.personBoxes, st.tracks, trackTime.Seconds()/float64(max(1, st.tracks)), st.reIDs, per100)
	t.Logf("counts after one pass:\n%s", en.Counts())
	if st.tracks == 0 || st.frames < 100 && *maxFrames == 0 {
		t.Fatalf("nothing tracked in %d frames", st.frames)
	}
	c := en.Counts().Lines["walkway"]
	if *maxFrames == 0 && c.In+c.Out == 0 {
		t.Errorf("nobody crossed the walkway line in the whole video")
	}
}

// writeAnnotated draws the zone, the line (with its "in" side), the tracks
// and a caption with the running counts on a copy of img and writes it as
// JPEG.
func writeAnnotated(t *testing.T, img gocv.Mat, tracks []track.Track, caption, path string) {
	t.Helper()
	out := img.Clone()
	defer out.Close()
	w, h := float64(img.Cols()), float64(img.Rows())
	px := func(p [2]float64) image.Point { return image.Pt(int(p[0]*w), int(p[1]*h)) }
	for _, z := range demoConfig.Zones {
		var pts []image.Point
		for _, p := range z.Polygon {
			pts = append(pts, px(p))
		}
		pv := gocv.NewPointsVectorFromPoints([][]image.Point{pts})
		gocv.Polylines(&out, pv, true, color.RGBA{255, 200, 0, 0}, 2)
		pv.Close()
		gocv.PutText(&out, "zone "+z.Name, pts[0].Add(image.Pt(4, -6)), gocv.FontHersheySimplex, 0.5, color.RGBA{255, 200, 0, 0}, 2)
	}
	for _, l := range demoConfig.Lines {
		a, b := px(l.From), px(l.To)
		gocv.ArrowedLine(&out, a, b, color.RGBA{0, 0, 255, 0}, 2)
		gocv.PutText(&out, "line "+l.Name+" (in: left->right)", b.Add(image.Pt(-60, -8)), gocv.FontHersheySimplex, 0.5, color.RGBA{0, 0, 255, 0}, 2)
	}
	for _, tk := range tracks {
		c := color.RGBA{0, 220, 0, 0}
		if !tk.Matched {
			c = color.RGBA{160, 160, 160, 0} // coasting on the prediction
		}
		r := image.Rect(int(tk.Box.X), int(tk.Box.Y), int(tk.Box.Right()), int(tk.Box.Bottom()))
		gocv.Rectangle(&out, r, c, 2)
		gocv.PutText(&out, fmt.Sprintf("#%d", tk.ID), r.Min.Add(image.Pt(0, -4)), gocv.FontHersheySimplex, 0.5, c, 2)
		f := tk.Box.BottomCenter()
		gocv.Circle(&out, image.Pt(int(f.X), int(f.Y)), 3, color.RGBA{255, 0, 255, 0}, -1)
	}
	gocv.Rectangle(&out, image.Rect(0, img.Rows()-30, img.Cols(), img.Rows()), color.RGBA{0, 0, 0, 0}, -1)
	gocv.PutText(&out, caption, image.Pt(8, img.Rows()-9), gocv.FontHersheySimplex, 0.6, color.RGBA{255, 255, 255, 0}, 2)
	if !gocv.IMWrite(path, out) {
		t.Errorf("could not write %s", path)
	}
}
