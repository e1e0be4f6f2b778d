package preview

import (
	"context"
	"image"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/track"
)

const vtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// clip is a short run of real video frames with the walking people found by
// OpenCV background subtraction and given IDs by IoU matching: real boxes on
// real people, without depending on the pipeline's detector packages.
type clip struct {
	frames []gocv.Mat
	tracks [][]track.Track
}

var (
	clipOnce sync.Once
	theClip  *clip
	clipErr  string
)

// loadClip decodes the first n frames of vtest.avi once per test binary.
// The Mats live for the whole test run (they are the fixture, like a file).
func loadClip(t testing.TB) *clip {
	t.Helper()
	clipOnce.Do(func() {
		vc, err := gocv.VideoCaptureFile(vtest)
		if err != nil {
			clipErr = "open " + vtest + ": " + err.Error()
			return
		}
		defer vc.Close()
		// Moving people on a fixed camera: background subtraction, then
		// the bounding boxes of large foreground blobs.
		mog := gocv.NewBackgroundSubtractorMOG2WithParams(200, 32, false)
		defer mog.Close()
		mask := gocv.NewMat()
		defer mask.Close()
		kernel := gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(7, 7))
		defer kernel.Close()
		c := &clip{}
		var prev []track.Track
		var nextID uint64 = 1
		for i := 0; i < 150; i++ {
			m := gocv.NewMat()
			if !vc.Read(&m) || m.Empty() {
				m.Close()
				break
			}
			c.frames = append(c.frames, m)
			mog.Apply(m, &mask)
			gocv.Threshold(mask, &mask, 200, 255, gocv.ThresholdBinary)
			gocv.MorphologyEx(mask, &mask, gocv.MorphOpen, kernel)
			gocv.Dilate(mask, &mask, kernel)
			gocv.Dilate(mask, &mask, kernel)
			contours := gocv.FindContours(mask, gocv.RetrievalExternal, gocv.ChainApproxSimple)
			var cur []track.Track
			for j := 0; j < contours.Size(); j++ {
				r := gocv.BoundingRect(contours.At(j))
				if i < 10 || r.Dy() < 50 || r.Dx() < 15 || r.Dy() < r.Dx() {
					continue // the model is still learning, or not person-shaped
				}
				box := geom.Rect{X: float64(r.Min.X), Y: float64(r.Min.Y), W: float64(r.Dx()), H: float64(r.Dy())}
				id, best := uint64(0), 0.2
				for _, p := range prev {
					if iou := p.Box.IoU(box); iou > best {
						id, best = p.ID, iou
					}
				}
				if id == 0 {
					id = nextID
					nextID++
				}
				cur = append(cur, track.Track{ID: id, Label: "person", Box: box, Score: 0.9, Matched: true, Confirmed: true})
			}
			contours.Close()
			prev = cur
			c.tracks = append(c.tracks, cur)
		}
		if len(c.frames) == 0 {
			clipErr = "no frames decoded from " + vtest
			return
		}
		theClip = c
	})
	if theClip == nil {
		t.Fatalf("test video: %s", clipErr)
	}
	return theClip
}

// frame returns frame i (cycling) as a new pipeline frame owning a copy.
func (c *clip) frame(stream string, seq uint64) *stages.Frame {
	i := int(seq) % len(c.frames)
	f := stages.NewFrame(stream, seq, picture.New(c.frames[i].Clone()))
	f.Tracks = c.tracks[i]
	return f
}

// feed writes frames to s at fps until ctx is done, like the runner does:
// Write, then release the runner's reference.
func (c *clip) feed(ctx context.Context, s *Sink, stream string, fps float64) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / fps))
	defer tick.Stop()
	for seq := uint64(1); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f := c.frame(stream, seq)
		_ = s.Write(ctx, f)
		f.Release()
	}
}
