package capturetest

import (
	"testing"

	"github.com/stretchr/testify/require"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// The frame-level leak check, the one that works without -tags matprofile,
// sees a frame the source kept and one it released behind the caller's back.
func TestFrameCheckSeesKeptAndOverReleasedFrames(t *testing.T) {
	matcheck.Leaks(t)
	src := &tracked{}
	frame := func(seq uint64) *stages.Frame {
		f := stages.NewFrame("cam", seq, picture.New(gocv.NewMatWithSize(4, 4, gocv.MatTypeCV8UC3)))
		src.frames = append(src.frames, f)
		return f
	}
	frame(1).Release() // released once: fine
	kept := frame(2)
	kept.Retain() // a source that keeps a reference and never drops it
	kept.Release()
	over := frame(3)
	over.Release()
	over.Release() // a source that releases a frame it handed out
	require.Equal(t, []string{
		`frame 2 of "cam": 1 references left after Close (a leak: the source kept one)`,
		`frame 3 of "cam": released 1 times too often (the source released a frame it handed out)`,
	}, src.frameErrors())
	kept.Release()
	require.Equal(t, []string{
		`frame 3 of "cam": released 1 times too often (the source released a frame it handed out)`,
	}, src.frameErrors())
}
