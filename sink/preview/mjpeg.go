package preview

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"net/http"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

const mjpegBoundary = "ospreyframe"

// handleMJPEG streams multipart JPEGs of the newest frames with boxes, zones
// and lines drawn server-side. Each client encodes from the stream's latest
// slot at its own pace, so a slow client only slows itself.
func (s *Sink) handleMJPEG(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("stream")
	st := s.lookup(id)
	if st == nil {
		http.Error(w, fmt.Sprintf("preview: no stream %q: GET /api/streams lists them", id), http.StatusNotFound)
		return
	}
	st.nMJPEG.Add(1)
	defer st.nMJPEG.Add(-1)
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+mjpegBoundary)
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	canvas := gocv.NewMat()
	defer canvas.Close()
	motion := r.URL.Query().Get("motion") == "1" // draw the motion gate's boxes and regions
	// The client leaving or the sink closing ends the stream.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	// The encoding runs on a goroutine of its own with the background
	// scheduling: the handler's goroutine belongs to net/http and must not
	// keep a lowered thread.
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.inBackground(func() { s.streamMJPEG(ctx, w, rc, st, &canvas, motion) })
	}()
	<-done
}

// streamMJPEG writes multipart JPEGs of st's newest frames to w until ctx
// is done or the client goes away.
func (s *Sink) streamMJPEG(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, st *stream, canvas *gocv.Mat, motion bool) {
	var last uint64
	pace := st.pacer()
	id := st.id
	for {
		f, g := st.next(ctx, last)
		if f == nil {
			return
		}
		if last != 0 && g-last > 1 {
			st.stats.drop(dropMJPEGBusy, g-last-1)
		}
		last = g
		if ok, reason := pace.take(f.Captured); !ok {
			st.stats.drop(reason, 1)
			f.Release()
			continue
		}
		buf, err := renderJPEG(f, canvas, st.overlays(), motion, s.cfg.MJPEGQuality)
		f.Release()
		if err != nil {
			s.log.Warn("preview: mjpeg encode failed", "stream", id, "err", err)
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err = fmt.Fprintf(w, "--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", mjpegBoundary, buf.Len())
		if err == nil {
			_, err = w.Write(buf.GetBytes())
		}
		buf.Close()
		if err == nil {
			_, err = w.Write([]byte("\r\n"))
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return // the client went away
		}
	}
}

var (
	boxColor  = color.RGBA{R: 0, G: 230, B: 118, A: 255}
	zoneColor = color.RGBA{R: 255, G: 193, B: 7, A: 255}
	lineColor = color.RGBA{R: 233, G: 30, B: 99, A: 255}
	// motionColor and regionColor draw the motion gate's view (?motion=1).
	motionColor = color.RGBA{R: 255, G: 112, B: 67, A: 255}
	regionColor = color.RGBA{R: 41, G: 182, B: 246, A: 255}
	// childColor draws secondary detections inside a track (faces).
	childColor = color.RGBA{R: 255, G: 235, B: 59, A: 255}
)

// renderJPEG copies f's image into canvas, draws the overlay and encodes it.
func renderJPEG(f *stages.Frame, canvas *gocv.Mat, ov overlayMsg, motion bool, quality int) (*gocv.NativeByteBuffer, error) {
	img, err := picture.Mat(f)
	if err != nil {
		return nil, fmt.Errorf("preview: %w", err)
	}
	img.CopyTo(canvas)
	if motion {
		drawMotion(canvas, f)
	}
	drawOverlay(canvas, f, ov)
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, *canvas, []int{gocv.IMWriteJpegQuality, quality})
	if err != nil {
		return nil, fmt.Errorf("preview: jpeg encode: %w", err)
	}
	return buf, nil
}

// drawOverlay draws zones, lines and boxes (with IDs and labels) on img,
// which has f's size.
func drawOverlay(img *gocv.Mat, f *stages.Frame, ov overlayMsg) {
	w, h := float64(img.Cols()), float64(img.Rows())
	pt := func(p [2]float64) image.Point { return image.Pt(int(p[0]*w), int(p[1]*h)) }
	for _, z := range ov.Zones {
		for i := range z.Polygon {
			gocv.Line(img, pt(z.Polygon[i]), pt(z.Polygon[(i+1)%len(z.Polygon)]), zoneColor, 2)
		}
		if len(z.Polygon) > 0 {
			gocv.PutText(img, z.Name, pt(z.Polygon[0]), gocv.FontHersheySimplex, 0.5, zoneColor, 1)
		}
	}
	for _, l := range ov.Lines {
		gocv.Line(img, pt(l.From), pt(l.To), lineColor, 2)
		gocv.PutText(img, l.Name, pt(l.From), gocv.FontHersheySimplex, 0.5, lineColor, 1)
	}
	for _, b := range boxesOf(f) {
		r := image.Rect(int(b.Box.X), int(b.Box.Y), int(b.Box.Right()), int(b.Box.Bottom()))
		gocv.Rectangle(img, r, boxColor, 2)
		text := fmt.Sprintf("%s %.0f%%", b.Label, b.Score*100)
		if b.ID > 0 {
			text = fmt.Sprintf("#%d %s", b.ID, text)
		}
		gocv.PutText(img, text, image.Pt(r.Min.X, max(r.Min.Y-4, 12)), gocv.FontHersheySimplex, 0.45, boxColor, 1)
		if b.Attrs != "" {
			gocv.PutText(img, b.Attrs, image.Pt(r.Min.X, r.Max.Y+14), gocv.FontHersheySimplex, 0.45, boxColor, 1)
		}
		for _, c := range b.Children {
			gocv.Rectangle(img, image.Rect(int(c.Box.X), int(c.Box.Y), int(c.Box.Right()), int(c.Box.Bottom())), childColor, 2)
		}
	}
}

// drawMotion draws the motion gate's view of f: motion boxes thin, the
// detector's regions thick, and "skipped" when the detector did not run.
func drawMotion(img *gocv.Mat, f *stages.Frame) {
	rect := func(b geom.Rect) image.Rectangle {
		return image.Rect(int(b.X), int(b.Y), int(b.Right()), int(b.Bottom()))
	}
	for _, b := range f.Focus.Motion {
		gocv.Rectangle(img, rect(b), motionColor, 2)
	}
	for _, b := range f.Focus.Regions {
		gocv.Rectangle(img, rect(b), regionColor, 3)
	}
	if f.Focus.Skip {
		gocv.PutText(img, "skipped", image.Pt(8, img.Rows()-10), gocv.FontHersheySimplex, 0.6, regionColor, 2)
	}
}
