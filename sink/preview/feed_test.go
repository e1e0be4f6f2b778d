package preview

import (
	"context"
	"image"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/track"
)

const vtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// clip is a short run of real video frames with people found by OpenCV's HOG
// pedestrian detector and given IDs by IoU matching: real boxes on real
// people, without depending on the pipeline's detector packages.
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
		hog := gocv.NewHOGDescriptor()
		defer hog.Close()
		det := gocv.HOGDefaultPeopleDetector()
		defer det.Close()
		_ = hog.SetSVMDetector(det)
		small := gocv.NewMat()
		defer small.Close()
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
			if i%3 != 0 { // detect every third frame, keep boxes in between
				c.tracks = append(c.tracks, prev)
				continue
			}
			gocv.Resize(m, &small, image.Pt(m.Cols()/2, m.Rows()/2), 0, 0, gocv.InterpolationLinear)
			var cur []track.Track
			for _, r := range hog.DetectMultiScale(small) {
				box := geom.Rect{X: float64(r.Min.X * 2), Y: float64(r.Min.Y * 2), W: float64(r.Dx() * 2), H: float64(r.Dy() * 2)}
				id, best := uint64(0), 0.3
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
	f := stages.NewFrame(stream, seq, c.frames[i].Clone())
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
