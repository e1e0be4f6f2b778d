package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/infer"
)

// detectOptions are the flags of `pipeline detect`.
type detectOptions struct {
	cfg    infer.Config
	json   bool
	out    string
	frames int
}

// imageExts are read with IMRead; anything else is opened as a video.
var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true, ".webp": true, ".tif": true, ".tiff": true, ".ppm": true, ".pgm": true}

// cmdDetect runs a detector on images or videos and prints (--json: one
// object per image or frame) or draws (--out) what it finds.
func cmdDetect(ctx context.Context, args []string) int {
	var o detectOptions
	var classes, providers string
	var verbose bool
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.StringVar(&o.cfg.Path, "model", "models/ssd_mobilenet_v2_coco.onnx", "ONNX model file")
	fs.StringVar(&o.cfg.Format, "format", infer.FormatAuto, "model format: "+strings.Join(infer.Formats(), ", "))
	fs.StringVar(&o.cfg.Labels, "labels", "", `"coco", a labels file (one per line), or empty for the format's default`)
	fs.StringVar(&o.cfg.Library, "library", "", "ONNX Runtime shared library (default: $ORT_LIB, then third_party/lib)")
	fs.StringVar(&providers, "providers", "cpu", "execution providers to try in order, comma-separated")
	fs.IntVar(&o.cfg.Threads, "threads", 0, "ONNX Runtime intra-op threads (0: its default)")
	fs.StringVar(&o.cfg.Resize, "resize", "", "letterbox or stretch (default: the format's)")
	conf := fs.Float64("confidence", infer.DefaultConfidence, "minimum score")
	iou := fs.Float64("iou", infer.DefaultIoU, "non-maximum suppression IoU threshold")
	fs.BoolVar(&o.cfg.AgnosticNMS, "agnostic-nms", false, "suppress overlapping boxes across classes (TF.js COCO-SSD's detect(): with -iou 0.5)")
	fs.StringVar(&classes, "classes", "", "keep only these labels, comma-separated (e.g. person,car)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per image or frame")
	fs.StringVar(&o.out, "out", "", "write an annotated image (several frames: name-0001.jpg, ...)")
	fs.IntVar(&o.frames, "frames", 0, "frames to read from each video (0: all)")
	fs.BoolVar(&verbose, "v", false, "log the provider choice and fallbacks")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pipeline detect [flags] INPUT...   (images or videos)")
		fs.PrintDefaults()
	}
	inputs, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(inputs) == 0 {
		fs.Usage()
		return 2
	}
	o.cfg.Confidence, o.cfg.IoU = float32(*conf), float32(*iou)
	o.cfg.Providers = splitList(providers)
	o.cfg.Classes = splitList(classes)
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	det, err := infer.Open(o.cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pipeline detect: %v\n", err)
		return 1
	}
	defer det.Close()
	w := &detectWriter{opts: &o, det: det, stdout: os.Stdout, outputs: countOutputs(inputs, o.frames)}
	code := 0
	for _, in := range inputs {
		if err := w.source(ctx, in); err != nil {
			fmt.Fprintf(os.Stderr, "pipeline detect: %v\n", err)
			code = 1
			if errors.Is(err, context.Canceled) {
				break
			}
		}
	}
	return code
}

// parseInterspersed lets flags follow inputs (detect a.jpg --json).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// countOutputs guesses whether --out receives one image or several: a
// single image input writes exactly the --out path.
func countOutputs(inputs []string, frames int) int {
	if len(inputs) == 1 && (imageExts[strings.ToLower(filepath.Ext(inputs[0]))] || frames == 1) {
		return 1
	}
	return 2
}

// detectWriter prints and draws detections.
type detectWriter struct {
	opts    *detectOptions
	det     *infer.Detector
	stdout  io.Writer
	outputs int
	written int
}

// detectRecord is one --json line.
type detectRecord struct {
	Source     string            `json:"source"`
	Frame      int               `json:"frame"`
	Width      int               `json:"width"`
	Height     int               `json:"height"`
	Detections []infer.Detection `json:"detections"`
}

// source runs one image or video.
func (w *detectWriter) source(ctx context.Context, path string) error {
	if imageExts[strings.ToLower(filepath.Ext(path))] {
		img := gocv.IMRead(path, gocv.IMReadColor)
		defer img.Close()
		if img.Empty() {
			return fmt.Errorf("cannot read image %s: missing, unreadable or not an image", path)
		}
		return w.frame(path, 0, img)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		return fmt.Errorf("cannot open video %s: not a video OpenCV can decode (images need a known extension: .jpg, .png, ...)", path)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	n := 0
	for w.opts.frames == 0 || n < w.opts.frames {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !vc.Read(&img) || img.Empty() {
			break
		}
		if err := w.frame(path, n, img); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("cannot read video %s: no frames decoded", path)
	}
	return nil
}

// frame detects, prints and (with --out) draws one image.
func (w *detectWriter) frame(source string, n int, img gocv.Mat) error {
	dets, err := w.det.DetectImage(img)
	if err != nil {
		return fmt.Errorf("%s frame %d: %w", source, n, err)
	}
	if dets == nil {
		dets = []infer.Detection{} // "detections": [] rather than null
	}
	if w.opts.json {
		b, err := json.Marshal(detectRecord{Source: source, Frame: n, Width: img.Cols(), Height: img.Rows(), Detections: dets})
		if err != nil {
			return err
		}
		fmt.Fprintf(w.stdout, "%s\n", b)
	} else {
		fmt.Fprintf(w.stdout, "%s frame %d: %d detections\n", source, n, len(dets))
		for _, d := range dets {
			b := d.Box
			fmt.Fprintf(w.stdout, "  %-14s %.2f  x=%.0f y=%.0f w=%.0f h=%.0f\n", d.Label, d.Confidence, b.X, b.Y, b.W, b.H)
		}
	}
	if w.opts.out == "" {
		return nil
	}
	drawDetections(&img, dets)
	path := w.opts.out
	if w.outputs > 1 {
		ext := filepath.Ext(path)
		path = fmt.Sprintf("%s-%04d%s", strings.TrimSuffix(path, ext), w.written, ext)
	}
	w.written++
	if !gocv.IMWrite(path, img) {
		return fmt.Errorf("cannot write %s: check the directory exists and the extension is an image type (.jpg, .png)", path)
	}
	return nil
}

// drawDetections draws each box with its label and score on img.
func drawDetections(img *gocv.Mat, dets []infer.Detection) {
	for _, d := range dets {
		c := labelColour(d.ClassID)
		r := image.Rect(int(d.Box.X), int(d.Box.Y), int(d.Box.Right()), int(d.Box.Bottom()))
		gocv.Rectangle(img, r, c, 2)
		text := fmt.Sprintf("%s %.2f", d.Label, d.Confidence)
		size := gocv.GetTextSize(text, gocv.FontHersheySimplex, 0.5, 1)
		// Keep the label inside the image, above the box when there is room.
		y := max(r.Min.Y, size.Y+4)
		x := max(0, min(r.Min.X, img.Cols()-size.X-4))
		gocv.Rectangle(img, image.Rect(x, y-size.Y-4, x+size.X+4, y), c, -1)
		gocv.PutText(img, text, image.Pt(x+2, y-3), gocv.FontHersheySimplex, 0.5, color.RGBA{0, 0, 0, 0}, 1)
		for _, k := range d.Keypoints {
			gocv.Circle(img, image.Pt(int(k.X), int(k.Y)), 3, c, -1)
		}
	}
}

// labelColour gives each class a stable, bright colour.
func labelColour(class int) color.RGBA {
	palette := []color.RGBA{{0, 255, 0, 0}, {255, 128, 0, 0}, {0, 128, 255, 0}, {255, 0, 255, 0}, {0, 255, 255, 0}, {255, 255, 0, 0}}
	return palette[((class%len(palette))+len(palette))%len(palette)]
}
