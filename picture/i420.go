package picture

import (
	"errors"
	"fmt"
	"image"

	"gocv.io/x/gocv"
)

// I420 converts BGR Mats to I420 pictures of a fixed (even) size, scaling
// first when the source is larger. Buffers are reused across frames; the
// returned picture is valid until the next Convert.
type I420 struct {
	w, h   int
	scaled gocv.Mat
	yuv    gocv.Mat
	img    image.YCbCr
}

// NewI420 returns a converter to w x h (even) pictures.
func NewI420(w, h int) *I420 {
	return &I420{w: w, h: h, scaled: gocv.NewMat(), yuv: gocv.NewMat()}
}

// Convert returns src as an I420 picture of the converter's size.
func (c *I420) Convert(src gocv.Mat) (*image.YCbCr, error) {
	if src.Empty() || src.Type() != gocv.MatTypeCV8UC3 {
		return nil, errors.New("picture: frame image is not an 8-bit BGR picture")
	}
	in := src
	if src.Cols() != c.w || src.Rows() != c.h {
		gocv.Resize(src, &c.scaled, image.Pt(c.w, c.h), 0, 0, gocv.InterpolationArea)
		in = c.scaled
	}
	gocv.CvtColor(in, &c.yuv, gocv.ColorBGRToYUVI420)
	buf, err := c.yuv.DataPtrUint8()
	if err != nil {
		return nil, fmt.Errorf("picture: i420 buffer: %w", err)
	}
	ySize, cSize := c.w*c.h, (c.w/2)*(c.h/2)
	if len(buf) < ySize+2*cSize {
		return nil, fmt.Errorf("picture: i420 buffer is %d bytes, want %d", len(buf), ySize+2*cSize)
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
func (c *I420) Close() {
	_ = c.scaled.Close()
	_ = c.yuv.Close()
}
