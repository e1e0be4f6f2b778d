package prune

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/quant"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
)

const (
	ssdPath = "../../models/ssd_mobilenet_v2_coco.onnx"
	vtest   = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
)

// needORT loads ONNX Runtime ($ORT_LIB, else third_party/lib), or stops
// the test as a missing real part.
func needORT(t testing.TB) {
	t.Helper()
	if err := quant.InitRuntime(os.Getenv("ORT_LIB")); err != nil {
		realpart.Missing(t, realpart.ORT, err)
	}
}

func needSSD(t testing.TB) {
	t.Helper()
	needORT(t)
	realpart.File(t, realpart.SSDModel, ssdPath)
	realpart.File(t, realpart.SampleVideo, vtest)
}

// TestPruneSSD prunes the real COCO SSD a little, on 8 frames of vtest.avi,
// and checks the result is smaller, loads as an SSD, still finds what the
// parent finds on frames the refit did not see, and that the INT8
// quantiser takes it.
func TestPruneSSD(t *testing.T) {
	needSSD(t)
	matcheck.Leaks(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "pruned.onnx")
	rep, err := PruneFile(FileConfig{Model: ssdPath, Out: out, Format: "ssd", Calib: vtest, Frames: 8, Options: Options{Ratio: 0.1, Samples: 64}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d Convs, %d of %d channels removed, params %d -> %d", len(rep.Convs), rep.Removed, rep.Channels, rep.ParamsBefore, rep.ParamsAfter)
	// Every expansion Conv of MobileNetV2's 16 inverted-residual blocks
	// that has one, the first Conv, Conv_1 and the SSD's extra layers.
	if len(rep.Convs) < 17 || rep.Removed == 0 {
		t.Fatalf("%d prunable Convs, %d channels removed: want the expansion Convs and some channels", len(rep.Convs), rep.Removed)
	}
	pruned := map[string]bool{}
	for _, c := range rep.Convs {
		pruned[c.Name] = true
		if strings.Contains(c.Name, "Predictor") {
			t.Fatalf("head %s was pruned: its outputs are reshaped into boxes and scores", c.Name)
		}
	}
	const block = "FeatureExtractor/MobilenetV2/expanded_conv_"
	for i := 1; i <= 16; i++ {
		if name := block + strconv.Itoa(i) + "/expand/BatchNorm/batchnorm/add_1"; !pruned[name] {
			t.Fatalf("expansion Conv %s not pruned", name)
		}
	}
	if p := block + "2/project/BatchNorm/batchnorm/mul_1"; pruned[p] {
		t.Fatalf("%s was pruned: it feeds a residual sum", p)
	}
	before, _ := os.Stat(ssdPath)
	after, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() >= before.Size()*95/100 {
		t.Fatalf("pruned file %d bytes, parent %d: want clearly smaller", after.Size(), before.Size())
	}
	d, err := infer.Open(infer.Config{Path: out, Format: "auto", Providers: []string{"cpu"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	format := d.Format()
	d.Close()
	if format != "ssd" {
		t.Fatalf("pruned model detected as %q, want ssd", format)
	}
	r, err := quant.Evaluate(quant.EvalConfig{Ref: ssdPath, Model: out, Format: "ssd", Frames: vtest, Skip: 64, N: 3, Threads: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pruned vs FP32 on 3 held-out frames: %+v", r)
	if r.RefDetections == 0 {
		t.Fatal("the FP32 model found nothing: the comparison proves nothing")
	}
	if r.Recall < 0.8 || r.Precision < 0.8 {
		t.Fatalf("pruned model recall %.2f precision %.2f against FP32, want >= 0.8", r.Recall, r.Precision)
	}
	// `pipeline model quantize` takes the pruned model.
	q := filepath.Join(dir, "pruned.int8.onnx")
	if _, err := quant.QuantizeFile(quant.FileConfig{Model: out, Out: q, Format: "ssd", Calib: vtest, Frames: 4}, nil); err != nil {
		t.Fatal(err)
	}
	qd, err := infer.Open(infer.Config{Path: q, Format: "ssd", Providers: []string{"cpu"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	qd.Close()
}

func TestPruneFileErrors(t *testing.T) {
	needSSD(t)
	matcheck.Leaks(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.avi")
	if err := os.WriteFile(junk, []byte("not a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	noConv := filepath.Join(dir, "residual.onnx")
	if err := quant.SaveModel(residualModel(t), noConv); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.onnx")
	for _, c := range []struct {
		name string
		cfg  FileConfig
		is   error
		want []string
	}{
		{"ratio", FileConfig{Model: ssdPath, Out: out, Calib: vtest, Options: Options{Ratio: 1.5}}, ErrOptions, []string{"--ratio 1.5 is outside (0, 1)"}},
		{"missing calibration", FileConfig{Model: ssdPath, Out: out, Calib: filepath.Join(dir, "none.mp4"), Options: Options{Ratio: 0.1}}, quant.ErrFrames,
			[]string{filepath.Join(dir, "none.mp4"), "give a video file or an image folder"}},
		{"unreadable calibration", FileConfig{Model: ssdPath, Out: out, Calib: junk, Options: Options{Ratio: 0.1}}, quant.ErrFrames, []string{junk}},
		{"no prunable Conv", FileConfig{Model: noConv, Out: out, Calib: vtest, Options: Options{Ratio: 0.1}}, ErrNotPrunable, []string{"no prunable Conv", "(model " + noConv + ")"}},
		{"missing model", FileConfig{Model: filepath.Join(dir, "none.onnx"), Out: out, Calib: vtest, Options: Options{Ratio: 0.1}}, nil, []string{filepath.Join(dir, "none.onnx"), "check the --model path"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := PruneFile(c.cfg, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error %v, want %v", err, c.is)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("a model was written despite the error")
			}
		})
	}
}
