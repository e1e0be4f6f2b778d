package tfjs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/onnxgraph"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// e2eImage is one full-size image both pipelines see.
type e2eImage struct {
	name string
	mat  gocv.Mat // BGR
}

// e2eImages returns vtest.avi frames 45, 123, 250, 377 and 611 at their
// size (768x576), frame 500 resized to 1024x600 (another size and aspect)
// and frame 300 mirrored. The caller closes the Mats.
func e2eImages(t *testing.T) []e2eImage {
	t.Helper()
	realpart.File(t, realpart.SampleVideo, vtest)
	vc, err := gocv.VideoCaptureFile(vtest)
	if err != nil {
		t.Fatalf("open %s: %v", vtest, err)
	}
	defer vc.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	var out []e2eImage
	for i := 0; i <= 611; i++ {
		if !vc.Read(&frame) || frame.Empty() {
			t.Fatalf("%s: could not read frame %d", vtest, i)
		}
		name := fmt.Sprintf("frame %d", i)
		switch i {
		case 45, 123, 250, 377, 611:
			out = append(out, e2eImage{name, frame.Clone()})
		case 500:
			m := gocv.NewMat()
			gocv.Resize(frame, &m, image.Pt(1024, 600), 0, 0, gocv.InterpolationCubic)
			out = append(out, e2eImage{name + " resized to 1024x600", m})
		case 300:
			m := gocv.NewMat()
			gocv.Flip(frame, &m, 1)
			out = append(out, e2eImage{name + " mirrored", m})
		}
	}
	return out
}

// tfjsDetection is one detection of tools/tfjs-ref/detect.js.
type tfjsDetection struct {
	Class int        `json:"class"`
	Score float64    `json:"score"`
	BBox  [4]float64 `json:"bbox"` // xmin, ymin, xmax, ymax in pixels
}

// runTFJSDetect starts detect.js on images[lo:hi] and returns a wait func
// that yields each image's detections and its cut tensor (the resized
// 300x300x3 image the graph saw).
func runTFJSDetect(t *testing.T, dir, modelJSON string, rgb []string, sizes []image.Point, lo, hi int) func() ([][]tfjsDetection, []float32) {
	t.Helper()
	out := filepath.Join(dir, fmt.Sprintf("tfjs-%d.json", lo))
	cut := filepath.Join(dir, fmt.Sprintf("cut-%d.f32", lo))
	args := []string{filepath.Join(moduleRoot(t), "tools", "tfjs-ref", "detect.js"), modelJSON, out}
	for i := lo; i < hi; i++ {
		args = append(args, fmt.Sprintf("%s:%d:%d", rgb[i], sizes[i].X, sizes[i].Y))
	}
	args = append(args, "--cut", DefaultInput, "--cut-out", cut)
	cmd := exec.Command("node", args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	return func() ([][]tfjsDetection, []float32) {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("tfjs detect.js failed: %v\n%s", err, log.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var res []struct {
			Detections []tfjsDetection `json:"detections"`
		}
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatalf("tfjs detect.js output: %v", err)
		}
		dets := make([][]tfjsDetection, len(res))
		for i, r := range res {
			dets[i] = r.Detections
		}
		raw, err := os.ReadFile(cut)
		if err != nil {
			t.Fatal(err)
		}
		vals := make([]float32, len(raw)/4)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return dets, vals
	}
}

// agreement is how one model's detections compare with TF.js's.
type agreement struct {
	ref, got, matched int
	maxConfDiff       float64
	worst             string // the image and detection behind maxConfDiff, or a miss
	misses            []string
}

func (a agreement) recall() float64    { return float64(a.matched) / float64(max(1, a.ref)) }
func (a agreement) precision() float64 { return float64(a.matched) / float64(max(1, a.got)) }

func (a agreement) String() string {
	return fmt.Sprintf("recall %.3f (%d/%d), precision %.3f (%d/%d), max |confidence diff| %.2g",
		a.recall(), a.matched, a.ref, a.precision(), a.matched, a.got, a.maxConfDiff)
}

// compare matches each TF.js detection, best first, to the unmatched
// Osprey detection of the same label with the highest IoU, if >= minIoU.
func (a *agreement) compare(img string, labels []string, ref []tfjsDetection, got []infer.Detection, minIoU float64) {
	a.ref += len(ref)
	a.got += len(got)
	used := make([]bool, len(got))
	for _, r := range ref {
		rb := geom.RectFromCorners(r.BBox[0], r.BBox[1], r.BBox[2], r.BBox[3])
		best, bestIoU := -1, minIoU
		for j, g := range got {
			if used[j] || g.Label != labels[r.Class] {
				continue
			}
			if iou := rb.IoU(g.Box); iou >= bestIoU {
				best, bestIoU = j, iou
			}
		}
		if best < 0 {
			a.misses = append(a.misses, fmt.Sprintf("%s: TF.js %s %.3f at %.0f,%.0f unmatched", img, labels[r.Class], r.Score, r.BBox[0], r.BBox[1]))
			continue
		}
		used[best] = true
		a.matched++
		if d := math.Abs(r.Score - float64(got[best].Confidence)); d > a.maxConfDiff {
			a.maxConfDiff = d
			a.worst = fmt.Sprintf("%s: %s %.4f vs %.4f (IoU %.3f)", img, labels[r.Class], r.Score, got[best].Confidence, bestIoU)
		}
	}
	for j, g := range got {
		if !used[j] {
			a.misses = append(a.misses, fmt.Sprintf("%s: Osprey %s %.3f at %.0f,%.0f unmatched", img, g.Label, g.Confidence, g.Box.X, g.Box.Y))
		}
	}
}

// TestEndToEndMatchesTFJS runs COCO-SSD's own pipeline in TF.js (the whole
// graph on the full-size image, then coco-ssd's post-processing) and the
// imported model through Osprey's Preprocess and Detect on 5 full-size
// vtest.avi frames, a resized one and a mirrored one. The imported model
// declares TF's resize (MetaResize), so the resized input must be TF.js's
// to the bit, and every detection must match by label at IoU >= 0.7 with
// confidences within 0.02. The same model with the declaration stripped
// (OpenCV's resize, as before) is measured and logged for comparison.
func TestEndToEndMatchesTFJS(t *testing.T) {
	matcheck.Leaks(t)
	root := moduleRoot(t)
	realpart.File(t, realpart.TFJSRef, filepath.Join(root, "tools", "tfjs-ref", "node_modules", "@tensorflow", "tfjs"))
	realpart.Command(t, realpart.Node, "node")
	modelJSON := cocoModelPath(t)
	imgs := e2eImages(t)
	defer func() {
		for _, im := range imgs {
			im.mat.Close()
		}
	}()
	dir := t.TempDir()
	rgbFiles := make([]string, len(imgs))
	sizes := make([]image.Point, len(imgs))
	rgb := gocv.NewMat()
	defer rgb.Close()
	for i, im := range imgs {
		gocv.CvtColor(im.mat, &rgb, gocv.ColorBGRToRGB)
		px, err := rgb.DataPtrUint8()
		if err != nil {
			t.Fatal(err)
		}
		rgbFiles[i] = filepath.Join(dir, fmt.Sprintf("img%d.rgb", i))
		if err := os.WriteFile(rgbFiles[i], px, 0o644); err != nil {
			t.Fatal(err)
		}
		sizes[i] = image.Pt(im.mat.Cols(), im.mat.Rows())
	}
	// TF.js's pure-JS backend is the slow side (seconds per image): split
	// the images over one node process per core while Go works.
	procs := max(1, min(runtime.NumCPU(), 3, len(imgs)))
	var waits []func() ([][]tfjsDetection, []float32)
	for p := range procs {
		lo, hi := p*len(imgs)/procs, (p+1)*len(imgs)/procs
		waits = append(waits, runTFJSDetect(t, dir, modelJSON, rgbFiles, sizes, lo, hi))
	}

	m, err := Convert(modelJSON, Options{})
	if err != nil {
		t.Fatal(err)
	}
	declared := filepath.Join(dir, "coco.onnx")
	if err := onnxgraph.Save(m, declared); err != nil {
		t.Fatal(err)
	}
	var kept []*onnx.StringStringEntryProto
	for _, p := range m.MetadataProps {
		if p.Key != MetaResize {
			kept = append(kept, p)
		}
	}
	if len(kept) == len(m.MetadataProps) {
		t.Fatalf("the import did not declare its resize (metadata %s): %v", MetaResize, m.MetadataProps)
	}
	m.MetadataProps = kept
	stripped := filepath.Join(dir, "coco-opencv.onnx")
	if err := onnxgraph.Save(m, stripped); err != nil {
		t.Fatal(err)
	}

	// COCO-SSD's detect(): score >= 0.5, one class per box, class-agnostic
	// NMS at IoU 0.5.
	open := func(path string) *infer.Detector {
		d, err := infer.Open(infer.Config{
			Path: path, Library: filepath.Join(root, "third_party", "lib", "libonnxruntime.so"),
			Confidence: 0.5, IoU: 0.5, AgnosticNMS: true,
		}, slog.New(slog.DiscardHandler))
		if errors.Is(err, infer.ErrNoRuntime) {
			realpart.Missing(t, realpart.ORT, err)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	type run struct {
		name  string
		d     *infer.Detector
		dets  [][]infer.Detection
		input []float32 // the preprocessed images, float models only
	}
	runs := []*run{{name: "TF resize (" + MetaResize + ")", d: open(declared)}, {name: "OpenCV resize (no " + MetaResize + ")", d: open(stripped)}}
	for _, extra := range strings.FieldsFunc(os.Getenv("OSPREY_TFJS_E2E_MODELS"), func(r rune) bool { return r == ',' }) {
		runs = append(runs, &run{name: extra, d: open(extra)})
	}
	if a, b := runs[0].d.ResizeKernel(), runs[1].d.ResizeKernel(); a != "tf-bilinear align_corners=false half_pixel_centers=false" || b != "opencv" {
		t.Fatalf("Preprocess resizes with %q (declared) and %q (stripped)", a, b)
	}
	for _, r := range runs {
		pool := r.d.NewInputPool()
		for _, im := range imgs {
			in := pool.Get()
			if err := r.d.Preprocess(im.mat, in); err != nil {
				t.Fatal(err)
			}
			r.input = append(r.input, in.Data...)
			in.Release()
			dets, err := r.d.DetectImage(im.mat)
			if err != nil {
				t.Fatal(err)
			}
			r.dets = append(r.dets, dets)
		}
	}

	var ref [][]tfjsDetection
	var cut []float32
	for _, w := range waits {
		d, c := w()
		ref, cut = append(ref, d...), append(cut, c...)
	}
	if len(ref) != len(imgs) || len(cut) != len(imgs)*300*300*3 {
		t.Fatalf("tfjs detect.js gave %d images and %d cut values, want %d and %d", len(ref), len(cut), len(imgs), len(imgs)*300*300*3)
	}
	total := 0
	for _, r := range ref {
		total += len(r)
	}
	if total < 2*len(imgs) {
		t.Fatalf("TF.js found only %d detections in %d images: the reference is not exercising the model", total, len(imgs))
	}
	inDiff := func(in []float32) float64 {
		if len(in) != len(cut) {
			return math.NaN()
		}
		var m float64
		for i := range in {
			m = math.Max(m, math.Abs(float64(in[i])-float64(cut[i])))
		}
		return m
	}
	labels := runs[0].d.Labels()
	var results []agreement
	for _, r := range runs {
		var a agreement
		for i, im := range imgs {
			a.compare(im.name, labels, ref[i], r.dets[i], 0.7)
		}
		t.Logf("%s: %v; resized input max |diff| vs TF.js %.3g; worst confidence: %s", r.name, a, inDiff(r.input), a.worst)
		for _, m := range a.misses {
			t.Logf("  %s", m)
		}
		results = append(results, a)
	}
	if d := inDiff(runs[0].input); d != 0 {
		t.Errorf("the resized input differs from TF.js's by up to %.3g (want bit-equal)", d)
	}
	if a := results[0]; a.recall() < 1 || a.precision() < 1 || a.maxConfDiff > 0.02 {
		t.Errorf("imported model vs TF.js end to end: %v (want recall and precision 1 at IoU >= 0.7, confidences within 0.02)", a)
	}
}
