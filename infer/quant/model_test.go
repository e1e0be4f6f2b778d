package quant

import (
	"flag"
	"math"
	"path/filepath"
	"testing"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// long adds the slower SSD variants (FP16 and weight-only INT8 on the CPU
// provider): go test ./infer/quant -args -long
var long = flag.Bool("long", false, "also test the SSD FP16 and weight-only variants (about a minute more)")

// variantCase makes a variant of a real model and checks that ONNX Runtime
// loads it and the infer decoder finds what the FP32 parent finds.
type variantCase struct {
	name     string
	make     func(t *testing.T, out string)
	min      float64 // precision and recall floor
	maxScore float64 // mean |score diff| ceiling
}

func checkVariants(t *testing.T, model, format, frames string, skip, n int, cases []variantCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			matcheck.Leaks(t)
			out := filepath.Join(t.TempDir(), c.name+".onnx")
			c.make(t, out)
			r, err := Evaluate(EvalConfig{Ref: model, Model: out, Format: format, Frames: frames, Skip: skip, N: n, Threads: 2}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %+v", c.name, r)
			if r.RefDetections == 0 {
				t.Fatalf("the FP32 model found nothing in %d frames of %s: the comparison proves nothing", r.Frames, frames)
			}
			if r.Precision < c.min || r.Recall < c.min || r.MeanScoreDiff > c.maxScore {
				t.Fatalf("precision %.3f recall %.3f score diff %.3f, want >= %.2f, >= %.2f, <= %.3f", r.Precision, r.Recall, r.MeanScoreDiff, c.min, c.min, c.maxScore)
			}
		})
	}
}

func staticCase(model, format, calib string, frames int, opts Options, minPR, maxScore float64) variantCase {
	return variantCase{name: "int8-" + string(opts.Method), min: minPR, maxScore: maxScore, make: func(t *testing.T, out string) {
		rep, err := QuantizeFile(FileConfig{Model: model, Out: out, Format: format, Calib: calib, Frames: frames, Options: opts}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.QuantizedNodes == 0 || rep.Activations == 0 {
			t.Fatalf("nothing quantised: %+v", rep)
		}
	}}
}

var fp16Case = func(model string) variantCase {
	return variantCase{name: "fp16", min: 0.99, maxScore: 0.005, make: func(t *testing.T, out string) {
		if err := FP16File(model, out); err != nil {
			t.Fatal(err)
		}
	}}
}

var dynamicCase = func(model, format string, minPR float64) variantCase {
	return variantCase{name: "int8-weights", min: minPR, maxScore: 0.03, make: func(t *testing.T, out string) {
		if _, err := QuantizeFile(FileConfig{Model: model, Out: out, Format: format, Dynamic: true}, nil); err != nil {
			t.Fatal(err)
		}
	}}
}

func TestBlazeFaceVariants(t *testing.T) {
	checkVariants(t, blazePath, "blazeface", megamind, 16, 30, []variantCase{
		// BlazeFace (no batch norm, wide activation outliers) needs clipped
		// ranges: min-max loses precision (0.66) on this clip.
		staticCase(blazePath, "blazeface", megamind, 16, Options{Method: Percentile, Percentile: 99.9}, 0.95, 0.05),
		fp16Case(blazePath),
		// Weight-only INT8 adds a few detections near the threshold here
		// (precision 0.93 on this clip: 56 found for 52).
		dynamicCase(blazePath, "blazeface", 0.9),
	})
}

func TestSSDVariants(t *testing.T) {
	realpart.File(t, realpart.SSDModel, ssdPath)
	u8 := staticCase(ssdPath, "ssd", vtest, 8, Options{Method: Percentile}, 0.95, 0.05)
	u8.name += "-uint8-input"
	u8.make = func(t *testing.T, out string) {
		rep, err := QuantizeFile(FileConfig{Model: ssdPath, Out: out, Format: "ssd", Calib: vtest, Frames: 8, Uint8Input: true, Options: Options{Method: Percentile}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The SSD's x*2/255-1: zero point 127.5 rounds to 127, and the half
		// step left goes into the first Conv's bias.
		if u := rep.Uint8; u == nil || u.ZeroPoint != 127 || u.BiasFixed != 1 || math.Abs(float64(u.Offset)-1.0/255) > 1e-6 {
			t.Fatalf("uint8 input: %+v", u)
		}
	}
	cases := []variantCase{staticCase(ssdPath, "ssd", vtest, 8, Options{Method: Percentile}, 0.95, 0.05), u8}
	if *long {
		cases = append(cases, fp16Case(ssdPath), dynamicCase(ssdPath, "ssd", 0.97))
	}
	checkVariants(t, ssdPath, "ssd", vtest, 8, 12, cases)
}
