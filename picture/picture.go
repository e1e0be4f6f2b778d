// Package picture gives components the gocv Mat behind a frame's Image.
// Sources wrap what they decode with New; stages and sinks that read pixels
// call Mat. Keeping this outside package stages is what lets the contracts
// compile without OpenCV.
package picture

import (
	"errors"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/stages"
)

// ErrNoImage is returned by Mat for a frame that carries no gocv image: a
// metadata-only copy given to event sinks, or an image of another kind.
var ErrNoImage = errors.New("picture: the frame carries no OpenCV image")

// New returns m as a frame Image. The frame then owns m: its last Release
// closes it.
func New(m gocv.Mat) stages.Image { return &m }

// Mat returns the BGR Mat behind f.Image. The Mat stays owned by the frame:
// never Close it, and Retain the frame to keep it past the current call.
func Mat(f *stages.Frame) (gocv.Mat, error) {
	if m, ok := f.Image.(*gocv.Mat); ok && m != nil && !m.Empty() {
		return *m, nil
	}
	return gocv.Mat{}, ErrNoImage
}

// Of returns the Mat behind f.Image, or an empty Mat when f carries none
// (check with Empty). Like Mat, the frame keeps ownership.
func Of(f *stages.Frame) *gocv.Mat {
	m, _ := Mat(f)
	return &m
}
