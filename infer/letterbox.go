package infer

import "math"

// fitTransform returns the Transform that maps a srcW x srcH image into a
// dstW x dstH model input, and the size (w, h) the image is resized to before
// padding.
//
// Letterbox scales both axes by the same factor and pads (centred, or only
// right/bottom when topLeft). The scales recorded are the ones the resized
// image really has (resized/source, after rounding to whole pixels), so
// mapping a box to the model and back is exact up to float rounding.
func fitTransform(srcW, srcH, dstW, dstH int, mode string, topLeft bool) (t Transform, w, h int) {
	t.SrcW, t.SrcH = srcW, srcH
	if mode == ResizeStretch {
		t.ScaleX = float64(dstW) / float64(srcW)
		t.ScaleY = float64(dstH) / float64(srcH)
		return t, dstW, dstH
	}
	s := math.Min(float64(dstW)/float64(srcW), float64(dstH)/float64(srcH))
	w = min(dstW, max(1, int(math.Round(float64(srcW)*s))))
	h = min(dstH, max(1, int(math.Round(float64(srcH)*s))))
	t.ScaleX = float64(w) / float64(srcW)
	t.ScaleY = float64(h) / float64(srcH)
	if !topLeft {
		t.PadX = float64((dstW - w) / 2)
		t.PadY = float64((dstH - h) / 2)
	}
	return t, w, h
}
