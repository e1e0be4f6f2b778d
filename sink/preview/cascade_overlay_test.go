package preview

import (
	"encoding/json"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/object"
	"github.com/osprey-vision/osprey/picture"
)

// Secondary models' answers (secondary:) travel in the frame metadata the
// page draws and are drawn on MJPEG frames: attribute text under the box,
// child boxes (faces) inside it.
func TestCascadeOverlay(t *testing.T) {
	c := loadClip(t)
	matcheck.Leaks(t)
	var seq uint64
	for i, tr := range c.tracks {
		if len(tr) > 0 {
			seq = uint64(i)
			break
		}
	}
	f := c.frame("cam", seq)
	defer f.Release()
	if len(f.Tracks) == 0 {
		t.Fatal("background subtraction found nobody in the clip")
	}
	f.Tracks = f.Tracks[:1] // nothing else drawn over it
	b := f.Tracks[0].Box
	child := geom.Rect{X: b.X + b.W/4, Y: b.Y + b.H/4, W: b.W / 2, H: b.H / 4}
	f.Tracks[0].Attributes = []object.Attribute{{Name: "colour", Value: "red", Confidence: 0.91}}
	f.Tracks[0].Children = []object.Detection{{Label: "face", Confidence: 0.8, Box: child}}
	js, err := json.Marshal(newFrameMsg(f, 0, f.Width, f.Height))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"attrs":"colour: red (0.91)","children":[{"label":"face"`) {
		t.Fatalf("frame message lacks the track's answers: %s", js)
	}
	canvas := gocv.NewMat()
	defer canvas.Close()
	picture.Of(f).CopyTo(&canvas)
	drawOverlay(&canvas, f, newOverlayMsg(nil, nil))
	px := canvas.GetVecbAt(int(child.Y+child.H/2), int(child.X))
	if px[0] != childColor.B || px[1] != childColor.G || px[2] != childColor.R {
		t.Fatalf("pixel on the left edge of child box %v is %v, want the child colour", child, px)
	}
}
