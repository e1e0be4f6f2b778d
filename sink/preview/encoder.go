package preview

import (
	"errors"
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

// i420 converts BGR Mats to I420 pictures of a fixed (even) size, scaling
// first when the source is larger. Buffers are reused across frames; the
// returned picture is valid until the next Convert.
type i420 struct {
	w, h   int
	scaled gocv.Mat
	yuv    gocv.Mat
	img    image.YCbCr
}

func newI420(w, h int) *i420 {
	return &i420{w: w, h: h, scaled: gocv.NewMat(), yuv: gocv.NewMat()}
}

// Convert returns src as an I420 picture of the converter's size.
func (c *i420) Convert(src gocv.Mat) (*image.YCbCr, error) {
	if src.Empty() || src.Type() != gocv.MatTypeCV8UC3 {
		return nil, errors.New("preview: frame image is not an 8-bit BGR picture")
	}
	in := src
	if src.Cols() != c.w || src.Rows() != c.h {
		gocv.Resize(src, &c.scaled, image.Pt(c.w, c.h), 0, 0, gocv.InterpolationArea)
		in = c.scaled
	}
	gocv.CvtColor(in, &c.yuv, gocv.ColorBGRToYUVI420)
	buf, err := c.yuv.DataPtrUint8()
	if err != nil {
		return nil, fmt.Errorf("preview: i420 buffer: %w", err)
	}
	ySize, cSize := c.w*c.h, (c.w/2)*(c.h/2)
	if len(buf) < ySize+2*cSize {
		return nil, fmt.Errorf("preview: i420 buffer is %d bytes, want %d", len(buf), ySize+2*cSize)
	}
	c.img = image.YCbCr{
		Y: buf[:ySize], Cb: buf[ySize : ySize+cSize], Cr: buf[ySize+cSize : ySize+2*cSize],
		YStride: c.w, CStride: c.w / 2,
		SubsampleRatio: image.YCbCrSubsampleRatio420,
		Rect:           image.Rect(0, 0, c.w, c.h),
	}
	return &c.img, nil
}

// Close frees the converter's Mats.
func (c *i420) Close() {
	_ = c.scaled.Close()
	_ = c.yuv.Close()
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
