package motion

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
)

// ErrClosed is returned by Detect after Close.
var ErrClosed = errors.New("motion: detector closed")

const (
	// blurSize is the Gaussian kernel on the motion frame: it flattens
	// sensor noise and compression blocks before differencing.
	blurSize = 5
	// dilateIterations of a 3x3 kernel join the pieces of one mover (a
	// person's limbs and torso differ in places) into one blob.
	dilateIterations = 2
	// maxGain caps the contrast stretch, so a black scene's noise is not
	// blown up into motion.
	maxGain = 4.0
	// contrastLow and contrastHigh are the percentiles the stretch maps to
	// the ends of the grey range; the tails are clipped.
	contrastLow, contrastHigh = 0.01, 0.99
	// settleDivisor: a recalibration ends on the first frame whose changed
	// share is below WholeFrameShare / settleDivisor.
	settleDivisor = 5
	// maxCalibrationFrames ends a recalibration that never settles (a
	// flickering light): motion detection resumes on the latest background.
	maxCalibrationFrames = 30
)

// Result is what Detect found in one frame.
type Result struct {
	// Boxes are the motion boxes in frame pixels. The slice is reused by
	// the next Detect call: copy it to keep it.
	Boxes []geom.Rect
	// Share is the share of the unmasked motion frame that changed.
	Share float64
	// Coverage is the motion boxes' total area as a share of the frame
	// (overlaps counted twice, capped at 1).
	Coverage float64
	// Calibrating is set while the background is being built (first frame,
	// new frame size) or rebuilt after a whole-frame change; Boxes is empty
	// then and the gate should run the full frame.
	Calibrating bool
	// WholeFrame is set on the frame a whole-frame change was recognised.
	WholeFrame bool
	// CalibrationFrames is set on the first frame detected normally after a
	// calibration: how many frames the calibration took (those reported
	// with Calibrating, the triggering one included).
	CalibrationFrames int
}

// Stats are a detector's counters since it was made.
type Stats struct {
	// Frames is how many frames Detect processed.
	Frames int
	// MotionFrames is how many of them had at least one motion box.
	MotionFrames int
	// Recalibrations counts whole-frame changes.
	Recalibrations int
	// LastCalibrationFrames is how many frames the latest calibration took
	// (a recalibration, or the stream start).
	LastCalibrationFrames int
}

// Detector finds motion in one stream's frames. It keeps every OpenCV buffer
// between frames, so Detect allocates nothing once the frame size is known.
// A Detector is not safe for concurrent use: one stream, one goroutine.
type Detector struct {
	cfg   Config
	masks [][]image.Point // polygons scaled to the motion frame, rebuilt per frame size

	frameW, frameH int // size of the frames last seen
	w, h           int // motion frame size

	grey, small, blur, norm gocv.Mat
	halves                  []gocv.Mat // halving steps of shrink, one per size in halfSizes
	halfSizes               []image.Point
	bg, bg8, diff, bin, dil gocv.Mat // bg is float32
	labels, ccStats, cents  gocv.Mat
	kernel                  gocv.Mat
	keep                    gocv.Mat // 255 where motion counts, 0 under masks; empty without masks
	keepPixels              int

	hist [256]int

	calibrating bool
	calFrames   int
	boxes       []geom.Rect
	stats       Stats
	closed      bool
}

// NewDetector validates cfg and returns a detector for one stream; Close it
// when the stream ends.
func NewDetector(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("motion: %w", err)
	}
	return &Detector{
		cfg:  cfg,
		grey: gocv.NewMat(), small: gocv.NewMat(), blur: gocv.NewMat(), norm: gocv.NewMat(),
		bg: gocv.NewMat(), bg8: gocv.NewMat(), diff: gocv.NewMat(), bin: gocv.NewMat(), dil: gocv.NewMat(),
		labels: gocv.NewMat(), ccStats: gocv.NewMat(), cents: gocv.NewMat(),
		kernel: gocv.GetStructuringElement(gocv.MorphRect, image.Pt(3, 3)),
		keep:   gocv.NewMat(),
		boxes:  make([]geom.Rect, 0, 16),
	}, nil
}

// Stats returns the detector's counters.
func (d *Detector) Stats() Stats { return d.stats }

// MotionSize returns the size of the downscaled motion frame (0,0 before the
// first frame).
func (d *Detector) MotionSize() image.Point { return image.Pt(d.w, d.h) }

// Detect finds motion in frame, a BGR (CV_8UC3) or grey (CV_8UC1) image. It
// returns an error for an empty frame or another pixel type; the caller
// should then run the full frame. A change of frame size restarts the
// background.
func (d *Detector) Detect(frame gocv.Mat) (Result, error) {
	if d.closed {
		return Result{}, ErrClosed
	}
	if frame.Empty() {
		return Result{}, errors.New("motion: empty frame")
	}
	typ := frame.Type()
	if typ != gocv.MatTypeCV8UC3 && typ != gocv.MatTypeCV8UC1 {
		return Result{}, fmt.Errorf("motion: frame type %v, want BGR (CV_8UC3) or grey (CV_8UC1)", typ)
	}
	if frame.Cols() != d.frameW || frame.Rows() != d.frameH {
		d.resize(frame.Cols(), frame.Rows())
	}
	d.stats.Frames++
	d.boxes = d.boxes[:0]

	// Grey first, then shrink: one channel to resample instead of three.
	src := frame
	if typ == gocv.MatTypeCV8UC3 {
		gocv.CvtColor(frame, &d.grey, gocv.ColorBGRToGray)
		src = d.grey
	}
	if d.h != d.frameH {
		src = d.shrink(src)
	}
	gocv.GaussianBlur(src, &d.blur, image.Pt(blurSize, blurSize), 0, 0, gocv.BorderReplicate)
	if d.cfg.Contrast {
		d.stretch()
	} else {
		d.blur.CopyTo(&d.norm)
	}

	if d.bg.Empty() {
		// First frame at this size: it is the background.
		d.norm.ConvertTo(&d.bg, gocv.MatTypeCV32F)
		d.calibrating, d.calFrames = true, 1
		return Result{Calibrating: true}, nil
	}
	d.bg.ConvertTo(&d.bg8, gocv.MatTypeCV8U)
	gocv.AbsDiff(d.norm, d.bg8, &d.diff)
	gocv.Threshold(d.diff, &d.bin, float32(d.cfg.Threshold), 255, gocv.ThresholdBinary)
	if !d.keep.Empty() {
		gocv.BitwiseAnd(d.bin, d.keep, &d.bin)
	}
	share := 0.0
	if d.keepPixels > 0 {
		share = float64(gocv.CountNonZero(d.bin)) / float64(d.keepPixels)
	}
	gocv.DilateWithParams(d.bin, &d.dil, d.kernel, image.Pt(-1, -1), dilateIterations, gocv.BorderConstant, color.RGBA{})
	n := gocv.ConnectedComponentsWithStats(d.dil, &d.labels, &d.ccStats, &d.cents)
	fw, fh := float64(d.frameW), float64(d.frameH)
	sx, sy := fw/float64(d.w), fh/float64(d.h)
	boxArea := 0
	for i := 1; i < n; i++ { // label 0 is the background
		if int(d.ccStats.GetIntAt(i, int(gocv.CC_STAT_AREA))) < d.cfg.MinArea {
			continue
		}
		x, y := d.ccStats.GetIntAt(i, int(gocv.CC_STAT_LEFT)), d.ccStats.GetIntAt(i, int(gocv.CC_STAT_TOP))
		w, h := d.ccStats.GetIntAt(i, int(gocv.CC_STAT_WIDTH)), d.ccStats.GetIntAt(i, int(gocv.CC_STAT_HEIGHT))
		boxArea += int(w * h)
		d.boxes = append(d.boxes, geom.RectFromCorners(float64(x)*sx, float64(y)*sy,
			math.Min(float64(x+w)*sx, fw), math.Min(float64(y+h)*sy, fh)))
	}
	res := Result{Share: share, Coverage: math.Min(1, float64(boxArea)/float64(d.w*d.h))}
	// A light change alters most pixels; a camera bump alters only the
	// textured ones, but its boxes then cover most of the frame.
	change := math.Max(res.Share, res.Coverage)

	switch {
	case d.calibrating:
		d.calFrames++
		if change >= d.cfg.WholeFrameShare/settleDivisor && d.calFrames < maxCalibrationFrames {
			// Still changing (exposure settling): follow the frame.
			d.norm.ConvertTo(&d.bg, gocv.MatTypeCV32F)
			d.boxes = d.boxes[:0]
			res.Calibrating = true
			return res, nil
		}
		d.calibrating = false
		// The frames before this one calibrated; this one is detected normally.
		res.CalibrationFrames = d.calFrames - 1
		d.stats.LastCalibrationFrames = res.CalibrationFrames
	case change >= d.cfg.WholeFrameShare:
		d.stats.Recalibrations++
		d.calibrating, d.calFrames = true, 1
		d.norm.ConvertTo(&d.bg, gocv.MatTypeCV32F)
		d.boxes = d.boxes[:0]
		res.Calibrating, res.WholeFrame = true, true
		return res, nil
	}
	gocv.AccumulatedWeighted(d.norm, &d.bg, d.cfg.Rate)
	if len(d.boxes) > 0 {
		d.stats.MotionFrames++
	}
	res.Boxes = d.boxes
	return res, nil
}

// shrink scales the grey frame down to the motion frame size. Averaging
// (INTER_AREA) keeps sensor noise out of the small frame, but OpenCV's
// general area resampler costs more than the rest of Detect together, while
// its halving path is vectorised and about thirty times faster. So: halve
// while the result stays at or above the motion size (and the sides are
// even), then interpolate the last step on the small frame.
func (d *Detector) shrink(src gocv.Mat) gocv.Mat {
	for i := range d.halves {
		gocv.Resize(src, &d.halves[i], d.halfSizes[i], 0, 0, gocv.InterpolationArea)
		src = d.halves[i]
	}
	if src.Cols() == d.w && src.Rows() == d.h {
		return src
	}
	gocv.Resize(src, &d.small, image.Pt(d.w, d.h), 0, 0, gocv.InterpolationLinear)
	return d.small
}

// stretch maps the blurred frame's 1st..99th percentile grey levels onto
// 0..255 (gain capped at maxGain, centred) into d.norm.
func (d *Detector) stretch() {
	data, err := d.blur.DataPtrUint8()
	if err != nil { // a fresh Mat is continuous; fall back to no stretch
		d.blur.CopyTo(&d.norm)
		return
	}
	d.hist = [256]int{}
	const step = 3 // every third pixel is plenty for two percentiles
	n := 0
	for i := 0; i < len(data); i += step {
		d.hist[data[i]]++
		n++
	}
	lo, hi := percentile(&d.hist, n, contrastLow), percentile(&d.hist, n, contrastHigh)
	gain := maxGain
	if hi > lo {
		gain = math.Min(255/float64(hi-lo), maxGain)
	}
	gain = math.Max(gain, 1)
	mid := float64(lo+hi) / 2
	d.blur.ConvertToWithParams(&d.norm, gocv.MatTypeCV8U, float32(gain), float32(128-mid*gain))
}

// percentile returns the grey level below which share p of the n counted
// pixels lie.
func percentile(h *[256]int, n int, p float64) int {
	target := int(p * float64(n))
	sum := 0
	for v, c := range h {
		sum += c
		if sum > target {
			return v
		}
	}
	return 255
}

// resize sets the detector up for frames of w x h pixels: motion frame size,
// masks, and a fresh background.
func (d *Detector) resize(w, h int) {
	d.frameW, d.frameH = w, h
	d.h = d.cfg.FrameHeight
	if d.h > h {
		d.h = h
	}
	d.w = int(math.Round(float64(w) * float64(d.h) / float64(h)))
	if d.w < 1 {
		d.w = 1
	}
	for i := range d.halves {
		d.halves[i].Close()
	}
	d.halves, d.halfSizes = d.halves[:0], d.halfSizes[:0]
	for hw, hh := w, h; hw%2 == 0 && hh%2 == 0 && hh/2 >= d.h; hw, hh = hw/2, hh/2 {
		d.halves = append(d.halves, gocv.NewMat())
		d.halfSizes = append(d.halfSizes, image.Pt(hw/2, hh/2))
	}
	d.bg.Close()
	d.bg = gocv.NewMat()
	d.keep.Close()
	d.keep = gocv.NewMat()
	d.keepPixels = d.w * d.h
	if len(d.cfg.Masks) == 0 {
		return
	}
	d.keep.Close()
	d.keep = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), d.h, d.w, gocv.MatTypeCV8U)
	d.masks = d.masks[:0]
	for _, pg := range d.cfg.Masks {
		pts := make([]image.Point, len(pg))
		for i, p := range pg {
			pts[i] = image.Pt(int(math.Round(p[0]*float64(d.w))), int(math.Round(p[1]*float64(d.h))))
		}
		d.masks = append(d.masks, pts)
	}
	pv := gocv.NewPointsVectorFromPoints(d.masks)
	gocv.FillPoly(&d.keep, pv, color.RGBA{})
	pv.Close()
	d.keepPixels = gocv.CountNonZero(d.keep)
}

// Close releases the detector's buffers; it is safe to call twice.
func (d *Detector) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	for _, m := range []*gocv.Mat{&d.grey, &d.small, &d.blur, &d.norm, &d.bg, &d.bg8, &d.diff, &d.bin,
		&d.dil, &d.labels, &d.ccStats, &d.cents, &d.kernel, &d.keep} {
		m.Close()
	}
	for i := range d.halves {
		d.halves[i].Close()
	}
	return nil
}
