package preview

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"
)

// encoder turns pictures into one compressed access unit each. It is used
// only from the stream's encode loop goroutine. Each implementation also
// implements yuvEncoder or matEncoder.
type encoder interface {
	// ForceKeyFrame makes the next picture a key frame (a viewer joined or
	// sent a picture-loss indication).
	ForceKeyFrame()
	Close() error
}

// yuvEncoder encodes I420 pictures of the size given at creation.
type yuvEncoder interface {
	encoder
	Encode(img *image.YCbCr) ([]byte, error)
}

// matEncoder encodes BGR frames itself (scaling them as needed).
type matEncoder interface {
	encoder
	EncodeMat(m gocv.Mat) ([]byte, error)
}

// newEncoder builds the configured encoder for w x h pictures. Both libvpx
// and libx264 are driven directly (cgo) so speed, threads and logging are
// the sink's to set; gstreamer_encoder selects a GStreamer element instead.
func newEncoder(cfg Config, w, h int) (encoder, error) {
	if cfg.GStreamerEncoder != "" {
		return newGstEncoder(cfg, w, h)
	}
	switch cfg.Codec {
	case CodecVP8:
		return newVP8Encoder(cfg, w, h)
	case CodecH264:
		return newH264Encoder(cfg, w, h)
	}
	return nil, fmt.Errorf("preview: codec %q is not supported: use h264 or vp8", cfg.Codec)
}

// fitSize returns w x h scaled down to fit maxW x maxH (0: no cap) keeping
// the aspect ratio, rounded down to even numbers as I420 requires.
func fitSize(w, h, maxW, maxH int) (int, int) {
	s := 1.0
	if maxW > 0 && w > maxW {
		s = float64(maxW) / float64(w)
	}
	if maxH > 0 && float64(h)*s > float64(maxH) {
		s = float64(maxH) / float64(h)
	}
	ow, oh := int(float64(w)*s)&^1, int(float64(h)*s)&^1
	return max(ow, 2), max(oh, 2)
}
