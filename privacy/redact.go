package privacy

import (
	"image"
	"image/color"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
)

// Redactor redacts regions of BGR pictures in place. It keeps scratch Mats
// between calls: use one per goroutine and Close it once.
type Redactor struct {
	tmp, small, mask gocv.Mat
}

// NewRedactor returns a Redactor with empty scratch.
func NewRedactor() *Redactor {
	return &Redactor{tmp: gocv.NewMat(), small: gocv.NewMat(), mask: gocv.NewMat()}
}

// Close frees the scratch Mats.
func (r *Redactor) Close() {
	_ = r.tmp.Close()
	_ = r.small.Close()
	_ = r.mask.Close()
}

var black = color.RGBA{A: 255}

// Boxes redacts each box of img (pixels; clamped to the picture) with m.
func (r *Redactor) Boxes(img *gocv.Mat, m Method, boxes []image.Rectangle) {
	bounds := image.Rect(0, 0, img.Cols(), img.Rows())
	for _, b := range boxes {
		b = b.Intersect(bounds)
		if b.Empty() {
			continue
		}
		roi := img.Region(b)
		if m == Fill {
			roi.SetTo(gocv.NewScalar(0, 0, 0, 0))
		} else {
			r.obscure(roi, m)
			r.tmp.CopyTo(&roi)
		}
		_ = roi.Close()
	}
}

// Polygons redacts each polygon of img (pixels) with m.
func (r *Redactor) Polygons(img *gocv.Mat, m Method, polys [][]image.Point) {
	if len(polys) == 0 {
		return
	}
	if m == Fill {
		pv := gocv.NewPointsVectorFromPoints(polys)
		gocv.FillPoly(img, pv, black)
		pv.Close()
		return
	}
	bounds := image.Rect(0, 0, img.Cols(), img.Rows())
	for _, pg := range polys {
		b := polyBounds(pg).Intersect(bounds)
		if b.Empty() {
			continue
		}
		roi := img.Region(b)
		r.obscure(roi, m)
		// Only the polygon's pixels take the obscured copy.
		r.mask.Close()
		r.mask = gocv.NewMatWithSize(b.Dy(), b.Dx(), gocv.MatTypeCV8UC1)
		r.mask.SetTo(gocv.NewScalar(0, 0, 0, 0))
		local := make([]image.Point, len(pg))
		for i, p := range pg {
			local[i] = p.Sub(b.Min)
		}
		pv := gocv.NewPointsVectorFromPoints([][]image.Point{local})
		gocv.FillPoly(&r.mask, pv, color.RGBA{R: 255, G: 255, B: 255, A: 255})
		pv.Close()
		r.tmp.CopyToWithMask(&roi, r.mask)
		_ = roi.Close()
	}
}

// obscure writes roi blurred or pixelated into r.tmp (roi's size). It works
// on a copy of roi alone, so nothing outside the region leaks in.
func (r *Redactor) obscure(roi gocv.Mat, m Method) {
	w, h := roi.Cols(), roi.Rows()
	switch m {
	case Pixelate:
		block := blockSize(w, h)
		sw, sh := max(1, (w+block-1)/block), max(1, (h+block-1)/block)
		gocv.Resize(roi, &r.small, image.Pt(sw, sh), 0, 0, gocv.InterpolationArea)
		gocv.Resize(r.small, &r.tmp, image.Pt(w, h), 0, 0, gocv.InterpolationNearestNeighbor)
		// Soften the block edges (half a block): the blocks still show,
		// but their edges are not new high-frequency detail for the codec to
		// spend bits on and ring around.
		k := max(3, block/2) | 1
		gocv.Blur(r.tmp, &r.small, image.Pt(k, k))
		r.small.CopyTo(&r.tmp)
	default:
		// Two box filters a third of the region wide: close to a Gaussian,
		// and a box filter costs the same per pixel whatever its size.
		k := max(3, max(w, h)/3) | 1
		ks := image.Pt(k, k)
		roi.CopyTo(&r.tmp)
		gocv.Blur(r.tmp, &r.small, ks)
		gocv.Blur(r.small, &r.tmp, ks)
	}
}

// blockSize is the side of a pixelated region's blocks: about 8 across
// its longer side, at least 4 pixels.
func blockSize(w, h int) int { return max(4, (max(w, h)+7)/8) }

func polyBounds(pg []image.Point) image.Rectangle {
	if len(pg) == 0 {
		return image.Rectangle{}
	}
	b := image.Rectangle{Min: pg[0], Max: pg[0]}
	for _, p := range pg[1:] {
		b.Min.X, b.Min.Y = min(b.Min.X, p.X), min(b.Min.Y, p.Y)
		b.Max.X, b.Max.Y = max(b.Max.X, p.X), max(b.Max.Y, p.Y)
	}
	b.Max = b.Max.Add(image.Pt(1, 1))
	return b
}

// pad grows box by share of its size on every side and rounds it outwards
// to whole pixels.
func pad(box geom.Rect, share float64) image.Rectangle {
	dx, dy := box.W*share, box.H*share
	x0, y0 := box.X-dx, box.Y-dy
	x1, y1 := box.Right()+dx, box.Bottom()+dy
	return image.Rect(floor(x0), floor(y0), ceil(x1), ceil(y1))
}

func floor(v float64) int {
	i := int(v)
	if float64(i) > v {
		i--
	}
	return i
}

func ceil(v float64) int {
	i := int(v)
	if float64(i) < v {
		i++
	}
	return i
}

// maskPolygons scales normalised mask polygons to a w x h picture.
func maskPolygons(masks [][][]float64, w, h int) [][]image.Point {
	out := make([][]image.Point, 0, len(masks))
	for _, pg := range masks {
		pts := make([]image.Point, 0, len(pg))
		for _, p := range pg {
			if len(p) == 2 {
				pts = append(pts, image.Pt(int(p[0]*float64(w)+0.5), int(p[1]*float64(h)+0.5)))
			}
		}
		if len(pts) >= 3 {
			out = append(out, pts)
		}
	}
	return out
}
