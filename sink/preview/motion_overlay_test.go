package preview

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// The motion gate's view travels with each frame's metadata (the page draws
// it behind its "Motion and regions" toggle) and is drawn on MJPEG frames
// asked for with ?motion=1.
func TestMotionOverlay(t *testing.T) {
	c := loadClip(t)
	matcheck.Leaks(t)
	f := c.frame("cam", 1)
	defer f.Release()
	f.Focus = stages.Focus{Motion: []geom.Rect{{X: 10, Y: 20, W: 30, H: 40}}, Regions: []geom.Rect{{X: 100, Y: 100, W: 200, H: 150}}}
	m := newFrameMsg(f, 0, f.Width, f.Height)
	if !slices.Equal(m.Motion, f.Focus.Motion) || !slices.Equal(m.Regions, f.Focus.Regions) {
		t.Fatalf("frame message motion %v regions %v, want the frame's focus %+v", m.Motion, m.Regions, f.Focus)
	}
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"regions":[[100,100,200,150]]`) {
		t.Fatalf("the page reads [x,y,w,h] arrays; got %s", js)
	}

	canvas := gocv.NewMat()
	defer canvas.Close()
	picture.Of(f).CopyTo(&canvas)
	drawMotion(&canvas, f)
	for _, c := range []struct {
		what string
		y, x int
		want [3]uint8
	}{
		{"the region's top edge", 100, 200, [3]uint8{regionColor.B, regionColor.G, regionColor.R}},
		{"the motion box's top edge", 20, 25, [3]uint8{motionColor.B, motionColor.G, motionColor.R}},
	} {
		px := canvas.GetVecbAt(c.y, c.x)
		if [3]uint8{px[0], px[1], px[2]} != c.want {
			t.Errorf("pixel on %s is %v, want %v", c.what, px, c.want)
		}
	}
}
