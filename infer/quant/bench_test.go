package quant

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// benchThreads is the same for every variant so the ratio compares models,
// not thread counts (the machine has 2 cores).
const benchThreads = 2

var benchModels struct {
	once sync.Once
	dir  string
	err  error
}

// TestMain removes the benchmark's model variants.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchModels.dir != "" {
		os.RemoveAll(benchModels.dir)
	}
	os.Exit(code)
}

// ssdVariants builds the INT8 (percentile, 32 calibration frames) and FP16
// variants of the COCO SSD once per run, as `pipeline model quantize/fp16` do.
func ssdVariants(b *testing.B) map[string]string {
	realpart.File(b, realpart.SSDModel, ssdPath)
	benchModels.once.Do(func() {
		benchModels.dir, benchModels.err = os.MkdirTemp("", "quant-bench")
		if benchModels.err != nil {
			return
		}
		int8 := filepath.Join(benchModels.dir, "int8.onnx")
		if _, err := QuantizeFile(FileConfig{Model: ssdPath, Out: int8, Format: "ssd", Calib: vtest, Frames: 32, Options: Options{Method: Percentile}}, nil); err != nil {
			benchModels.err = err
			return
		}
		benchModels.err = FP16File(ssdPath, filepath.Join(benchModels.dir, "fp16.onnx"))
	})
	if benchModels.err != nil {
		b.Fatal(benchModels.err)
	}
	return map[string]string{
		"fp32": ssdPath,
		"int8": filepath.Join(benchModels.dir, "int8.onnx"),
		"fp16": filepath.Join(benchModels.dir, "fp16.onnx"),
	}
}

type benchDetector struct {
	d  *infer.Detector
	in *infer.Input
}

func openBench(b *testing.B, path string) *benchDetector {
	d, err := infer.Open(infer.Config{Path: path, Format: "ssd", Threads: benchThreads, Providers: []string{"cpu"}}, quiet(nil))
	if err != nil {
		b.Fatal(err)
	}
	// A real frame from the evaluation part of vtest.
	in := d.NewInputPool().Get()
	err = EachFrame(vtest, 100, 1, func(m gocv.Mat) error { return d.Preprocess(m, in) })
	if err != nil {
		b.Fatal(err)
	}
	return &benchDetector{d: d, in: in}
}

func (bd *benchDetector) detect(b *testing.B) {
	if _, err := bd.d.Detect(context.Background(), []*infer.Input{bd.in}); err != nil {
		b.Fatal(err)
	}
}

func (bd *benchDetector) close() {
	bd.in.Release()
	bd.d.Close()
}

// BenchmarkSSD times each variant on its own (ns/op per Detect, batch 1).
func BenchmarkSSD(b *testing.B) {
	paths := ssdVariants(b)
	for _, name := range []string{"fp32", "int8", "fp16"} {
		b.Run(name, func(b *testing.B) {
			bd := openBench(b, paths[name])
			defer bd.close()
			bd.detect(b) // warm-up: first run allocates and packs weights
			b.ResetTimer()
			for b.Loop() {
				bd.detect(b)
			}
		})
	}
}

// spinSettle lets the previous session's threads go idle (untimed).
const spinSettle = 20 * time.Millisecond

// BenchmarkSSDSideBySide runs FP32, INT8 and FP16 in turn within every
// iteration, so load from other processes on the shared cores hits all
// three alike, and reports each mean latency and the speed ratios.
func BenchmarkSSDSideBySide(b *testing.B) {
	paths := ssdVariants(b)
	names := []string{"fp32", "int8", "fp16"}
	dets := make([]*benchDetector, len(names))
	for i, n := range names {
		dets[i] = openBench(b, paths[n])
		defer dets[i].close()
		dets[i].detect(b)
	}
	spent := make([]time.Duration, len(names))
	b.ResetTimer()
	n := 0
	for b.Loop() {
		for i, d := range dets {
			// ONNX Runtime's pool threads spin a while after a run; on 2
			// cores that spinning would be charged to the next variant.
			time.Sleep(spinSettle)
			t0 := time.Now()
			d.detect(b)
			spent[i] += time.Since(t0)
		}
		n++
	}
	for i, name := range names {
		b.ReportMetric(float64(spent[i].Microseconds())/1000/float64(n), name+"-ms/frame")
	}
	b.ReportMetric(float64(spent[0])/float64(spent[1]), "int8-speedup")
	b.ReportMetric(float64(spent[0])/float64(spent[2]), "fp16-speedup")
}
