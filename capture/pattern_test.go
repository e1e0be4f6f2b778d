package capture

import (
	"context"
	"errors"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// readN reads n frames, keeping them (the caller releases).
func readN(t *testing.T, src stages.Source, n int) []*stages.Frame {
	t.Helper()
	var fs []*stages.Frame
	for range n {
		f, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	return fs
}

func release(fs []*stages.Frame) {
	for _, f := range fs {
		f.Release()
	}
}

func diffPixels(a, b gocv.Mat) int {
	d := gocv.NewMat()
	defer d.Close()
	gocv.AbsDiff(a, b, &d)
	g := gocv.NewMat()
	defer g.Close()
	gocv.CvtColor(d, &g, gocv.ColorBGRToGray)
	return gocv.CountNonZero(g)
}

func TestPatternDeterministicAndMoving(t *testing.T) {
	matcheck.Leaks(t)
	cfg := Config{ID: "p", URL: "test://?fps=1000", Width: 320, Height: 240}
	a := mustNew(t, cfg, nil)
	b := mustNew(t, cfg, nil)
	defer a.Close(context.Background())
	defer b.Close(context.Background())
	fa, fb := readN(t, a, 3), readN(t, b, 3)
	defer release(fa)
	defer release(fb)
	for i := range fa {
		if fa[i].Width != 320 || fa[i].Height != 240 || picture.Of(fa[i]).Type() != gocv.MatTypeCV8UC3 {
			t.Fatalf("frame %d: %dx%d type %v, want 320x240 BGR", i, fa[i].Width, fa[i].Height, picture.Of(fa[i]).Type())
		}
		if n := diffPixels(*picture.Of(fa[i]), *picture.Of(fb[i])); n != 0 {
			t.Errorf("frame %d differs between two runs in %d pixels", i+1, n)
		}
	}
	if n := diffPixels(*picture.Of(fa[0]), *picture.Of(fa[1])); n < 100 {
		t.Errorf("frames 1 and 2 differ in only %d pixels; the boxes should move", n)
	}
	// Bar colours (BGR) in row 150, clear of boxes and text on frame 1: the
	// first bar is white, the second yellow.
	if v := picture.Of(fa[0]).GetVecbAt(150, 5); v[0] != 255 || v[1] != 255 || v[2] != 255 {
		t.Errorf("first bar pixel %v, want white", v)
	}
	if v := picture.Of(fa[0]).GetVecbAt(150, 320/8+5); v[0] != 0 || v[1] != 255 || v[2] != 255 {
		t.Errorf("second bar pixel %v, want yellow (BGR 0,255,255)", v)
	}
}

func TestPatternPacing(t *testing.T) {
	matcheck.Leaks(t)
	src := mustNew(t, Config{ID: "p", URL: "test://?fps=50&w=160&h=120"}, nil)
	defer src.Close(context.Background())
	start := time.Now()
	release(readN(t, src, 26))
	// 25 intervals at 50 fps = 500ms; only a lower bound (no flaky upper bound).
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Errorf("26 frames at 50 fps in %s, want >= 400ms", el)
	}
}

func TestPatternFramesLoop(t *testing.T) {
	matcheck.Leaks(t)
	src := mustNew(t, Config{ID: "p", URL: "test://?fps=1000&w=64&h=48&frames=3", Loop: true}, nil)
	defer src.Close(context.Background())
	fs := readN(t, src, 7)
	defer release(fs)
	if fs[6].Seq != 7 {
		t.Errorf("seq %d after a loop, want 7", fs[6].Seq)
	}
	// Frame 4 is the pattern's frame 0 again.
	if n := diffPixels(*picture.Of(fs[0]), *picture.Of(fs[3])); n != 0 {
		t.Errorf("frame after wrap differs from the first in %d pixels", n)
	}
}

func TestPatternReadWithoutConnect(t *testing.T) {
	matcheck.Leaks(t)
	src := mustNew(t, Config{ID: "p", URL: "test://?fps=1000&w=64&h=48&frames=1"}, nil)
	defer src.Close(context.Background())
	release(readN(t, src, 1))
	if _, err := src.Read(context.Background()); !errors.Is(err, stages.ErrEndOfStream) {
		t.Errorf("Read: %v, want ErrEndOfStream", err)
	}
}
