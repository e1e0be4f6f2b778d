package infer

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
)

func TestBlazeFaceMegamind(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	frames := videoFrames(t, megamindPath, 11)
	defer closeAll(frames)
	d := openTest(t, Config{Path: blazefacePath, Format: "blazeface"})
	if d.Provider() != "cpu" || d.Format() != "blazeface" {
		t.Errorf("provider %q format %q", d.Provider(), d.Format())
	}
	img := frames[10] // Megamind faces the camera, 720x528
	dets, err := d.DetectImage(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) == 0 {
		t.Fatal("no face found in Megamind frame 10")
	}
	f := dets[0]
	if f.Label != "face" || f.Confidence < 0.8 {
		t.Errorf("best face %s %.2f, want face >= 0.8", f.Label, f.Confidence)
	}
	// A head in a 720x528 close-up: between 1/10 and 2/3 of the frame high,
	// and square (the model's boxes are square in input pixels, letterbox
	// keeps that).
	if f.Box.H < 53 || f.Box.H > 352 || f.Box.W/f.Box.H < 0.9 || f.Box.W/f.Box.H > 1.1 {
		t.Errorf("implausible face box %v", f.Box)
	}
	if len(f.Keypoints) != 6 {
		t.Fatalf("keypoints %v", f.Keypoints)
	}
	// Eyes, nose and mouth (the first four) lie in the face box.
	grow := geom.Rect{X: f.Box.X - 5, Y: f.Box.Y - 5, W: f.Box.W + 10, H: f.Box.H + 10}
	for _, k := range f.Keypoints[:4] {
		if k.X < grow.X || k.X > grow.Right() || k.Y < grow.Y || k.Y > grow.Bottom() {
			t.Errorf("keypoint %v outside face box %v", k, f.Box)
		}
	}
	// The eyes are above the mouth.
	if f.Keypoints[0].Y > f.Keypoints[3].Y || f.Keypoints[1].Y > f.Keypoints[3].Y {
		t.Errorf("eyes below mouth: %v", f.Keypoints)
	}
	// The 256x256 back-camera model has other anchors (strides 16,32,32,32)
	// and weights; it must put the face in the same place.
	back := openTest(t, Config{Path: "../third_party/blazeface/ONNX/face_detection_back_256x256_barracuda.onnx", Format: "blazeface"})
	if w, h := back.InputSize(); w != 256 || h != 256 {
		t.Fatalf("back model input %dx%d", w, h)
	}
	bdets, err := back.DetectImage(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(bdets) == 0 || bdets[0].Box.IoU(f.Box) < 0.7 {
		t.Errorf("back model faces %v, front model %v", bdets, f.Box)
	}
}

func TestOpenErrors(t *testing.T) {
	requireRuntime(t)
	dir := t.TempDir()
	model, err := os.ReadFile(blazefacePath)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.onnx")
	if err := os.WriteFile(truncated, model[:len(model)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.onnx")
	if err := os.WriteFile(corrupt, []byte("this is not an onnx model\x00\xff\xfe"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.onnx")
	tests := []struct {
		name string
		cfg  Config
		err  []string // substrings, in order
	}{
		{"missing model", Config{Path: missing, Format: "ssd"},
			[]string{"infer: model " + missing, "no such file", "check model.path"}},
		{"truncated", Config{Path: truncated, Format: "blazeface"},
			[]string{"infer: model " + truncated + " is not a readable ONNX model", "re-export"}},
		{"corrupt", Config{Path: corrupt, Format: "blazeface"},
			[]string{"infer: model " + corrupt + " is not a readable ONNX model"}},
		{"wrong format", Config{Path: blazefacePath, Format: "yolov8"},
			[]string{"does not fit format yolov8: yolov8 expects one output [N,4+C,A]", "the model has outputs Identity:0 [1,512,1], Identity_1:0 [1,384,1], Identity_2:0 [1,512,16], Identity_3:0 [1,384,16]"}},
		{"wrong format ssd", Config{Path: blazefacePath, Format: "ssd"},
			[]string{"does not fit format ssd: ssd expects two outputs"}},
		{"unknown class", Config{Path: blazefacePath, Format: "blazeface", Classes: []string{"person"}},
			[]string{`infer: detect.classes: "person" not in the blazeface labels (e.g. face)`}},
		{"missing labels file", Config{Path: blazefacePath, Format: "blazeface", Labels: filepath.Join(dir, "labels.txt")},
			[]string{"infer: labels file: open " + filepath.Join(dir, "labels.txt")}},
		{"bogus library", Config{Path: blazefacePath, Format: "blazeface", Library: filepath.Join(dir, "libonnxruntime.so")},
			[]string{"infer: onnx runtime library not found: model.library " + filepath.Join(dir, "libonnxruntime.so"), "run scripts/setup.sh"}},
		{"no provider", Config{Path: blazefacePath, Format: "blazeface", Providers: []string{"cuda", "tensorrt"}},
			[]string{"no execution provider worked (cuda:", "; tensorrt:", "add cpu to model.providers"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(tc.cfg, quietLog)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			rest := msg
			for _, s := range tc.err {
				i := strings.Index(rest, s)
				if i < 0 {
					t.Fatalf("error %q\nlacks %q", msg, s)
				}
				rest = rest[i+len(s):]
			}
		})
	}
}

// The wrong-format check also holds for the real SSD.
func TestSSDWrongFormat(t *testing.T) {
	requireRuntime(t)
	requireSSD(t)
	for _, format := range []string{"yolov8", "yolov5", "yolox", "blazeface", "yolo-end2end", "detr"} {
		_, err := Open(Config{Path: ssdPath, Format: format}, quietLog)
		want := "infer: model " + ssdPath + " does not fit format " + format + ": " + format + " expects "
		if err == nil || !strings.HasPrefix(err.Error(), want) ||
			!strings.HasSuffix(err.Error(), "; the model has outputs scores [?,1917,90], boxes [?,1917,1,4] (choose the format that matches the model, or model.format auto)") {
			t.Errorf("%s: err = %v", format, err)
		}
	}
}

func TestProviderFallback(t *testing.T) {
	requireRuntime(t)
	d := openTest(t, Config{Path: blazefacePath, Format: "blazeface", Providers: []string{"tensorrt", "cuda", "openvino", "coreml", "cpu"}, Threads: 1, InterOpThreads: 1})
	if d.Provider() != "cpu" {
		t.Errorf("provider %q, want cpu (the CPU build has no other)", d.Provider())
	}
}

func TestDetectorClosed(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	d, err := Open(Config{Path: blazefacePath, Format: "blazeface"}, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	img := grey(t, 64, 48)
	if _, err := d.DetectImage(img); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	pool := d.NewInputPool()
	in := pool.Get()
	defer in.Release()
	if err := d.Preprocess(img, in); !errors.Is(err, ErrClosed) {
		t.Errorf("Preprocess after Close: %v", err)
	}
	if _, err := d.Detect(context.Background(), []*Input{in}); !errors.Is(err, ErrClosed) {
		t.Errorf("Detect after Close: %v", err)
	}
}

func TestBadInputs(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	d := openTest(t, Config{Path: blazefacePath, Format: "blazeface"})
	empty := grey(t, 0, 0)
	in := d.NewInputPool().Get()
	defer in.Release()
	if err := d.Preprocess(empty, in); err == nil || err.Error() != "infer: preprocess: empty image" {
		t.Errorf("empty image: %v", err)
	}
	small := NewInputPool(10).Get()
	if _, err := d.Detect(context.Background(), []*Input{small}); err == nil || !strings.Contains(err.Error(), "wrong size") {
		t.Errorf("wrong-size input: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		conf Config
		err  string
	}{
		{"ok", Config{Path: "m.onnx", Format: "ssd"}, ""},
		{"everything wrong", Config{Format: "yolo", Providers: []string{"gpu"}, Threads: -1, InterOpThreads: -2,
			Confidence: 1.5, IoU: -0.1, Batch: -1, Resize: "crop"},
			"infer: model.path is empty: give the ONNX model file\n" +
				"infer: model.format \"yolo\" is unknown: use one of auto, blazeface, detr, ssd, yolo-end2end, yolov5, yolov8, yolox\n" +
				"infer: model.providers: \"gpu\" is unknown: use any of tensorrt, cuda, openvino, coreml, cpu\n" +
				"infer: model.threads must be >= 0, got -1\n" +
				"infer: model.inter_op_threads must be >= 0, got -2\n" +
				"infer: detect.confidence must be in [0,1], got 1.5\n" +
				"infer: detect.iou must be in [0,1], got -0.1\n" +
				"infer: detect.batch must be >= 0, got -1\n" +
				"infer: model.resize \"crop\" is unknown: use letterbox or stretch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.conf.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.err {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.err)
			}
		})
	}
}

func TestLabelsFile(t *testing.T) {
	requireRuntime(t)
	p := filepath.Join(t.TempDir(), "labels.txt")
	if err := os.WriteFile(p, []byte("mug\n\nhead\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := openTest(t, Config{Path: blazefacePath, Format: "blazeface", Labels: p})
	if got := d.Labels(); len(got) != 3 || got[0] != "mug" || got[1] != "" || got[2] != "head" {
		t.Errorf("labels %q", got)
	}
}

func TestDetectCancelled(t *testing.T) {
	requireRuntime(t)
	d := openTest(t, Config{Path: blazefacePath, Format: "blazeface"})
	in := d.NewInputPool().Get()
	defer in.Release()
	if err := d.Preprocess(grey(t, 64, 64), in); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Detect(ctx, []*Input{in}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Detect on a cancelled ctx: %v", err)
	}
	// The detector still works afterwards.
	if _, err := d.Detect(context.Background(), []*Input{in}); err != nil {
		t.Fatal(err)
	}
}

// ortChildEnv marks the child process of TestRuntimeMissing.
const ortChildEnv = "OSPREY_ORT_CHILD"

// With no library anywhere, Open names every path it tried. ONNX Runtime
// loads once per process, so this runs in a fresh child process started in
// an empty directory (no module root above it) with a bogus ORT_LIB. Its skip
// is not a missing part but the opposite: a runtime installed system-wide
// (found by the bare library name) leaves no "not found" error to check.
func TestRuntimeMissing(t *testing.T) {
	if os.Getenv(ortChildEnv) != "" {
		model := os.Getenv(ortChildEnv)
		_, err := Open(Config{Path: model, Format: "blazeface"}, quietLog)
		if err == nil {
			t.Skip("a system-wide ONNX Runtime was found")
		}
		for _, s := range []string{"infer: onnx runtime library not found: tried /nonexistent/libonnxruntime.so (missing)", "run scripts/setup.sh, or set ORT_LIB or model.library"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q lacks %q", err, s)
			}
		}
		if !errors.Is(err, ErrNoRuntime) {
			t.Errorf("error is not ErrNoRuntime: %v", err)
		}
		return
	}
	model, err := filepath.Abs(blazefacePath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRuntimeMissing$", "-test.v")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "ORT_LIB=/nonexistent/libonnxruntime.so", ortChildEnv+"="+model)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "--- SKIP: TestRuntimeMissing") {
		t.Skip("a system-wide ONNX Runtime was found")
	}
	if !strings.Contains(string(out), "--- PASS: TestRuntimeMissing") {
		t.Fatalf("child did not pass:\n%s", out)
	}
}

// Preprocess for the next batch may run while Detect runs the current one
// (the runtime pipelines them); run under -race.
func TestPreprocessWhileDetect(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	frames := videoFrames(t, megamindPath, 11)
	defer closeAll(frames)
	d := openTest(t, Config{Path: blazefacePath, Format: "blazeface"})
	pool := d.NewInputPool()
	ready := make(chan *Input, 2)
	errc := make(chan error, 1)
	go func() {
		defer close(ready)
		for i := range 20 {
			in := pool.Get()
			if err := d.Preprocess(frames[10-i%2], in); err != nil {
				errc <- err
				return
			}
			ready <- in
		}
	}()
	n := 0
	for in := range ready {
		out, err := d.Detect(context.Background(), []*Input{in})
		in.Release()
		if err != nil {
			t.Fatal(err)
		}
		if len(out[0]) == 0 {
			t.Errorf("input %d: no face", n)
		}
		n++
	}
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if n != 20 {
		t.Errorf("%d inputs detected, want 20", n)
	}
}
