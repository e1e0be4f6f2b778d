package infer

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/internal/realpart"
)

// benchModels are the models the benchmarks compare; a missing file skips
// its benchmarks with the reason.
var benchModels = []struct {
	name, path, format string
	part               realpart.Part
}{
	{"ssd", ssdPath, "ssd", realpart.SSDModel},
	// The same weights, fixed batch 1 and opset 10, which OpenCV 4.6 DNN can
	// load: the ORT/OpenCV-DNN ratio is read from this one (scripts/setup.sh).
	{"ssd-b1-opset10", "../models/ssd_mobilenet_v2_coco_b1_opencv.onnx", "ssd",
		realpart.Part{Name: "OpenCV-loadable COCO SSD (models/ssd_mobilenet_v2_coco_b1_opencv.onnx)", Setup: "scripts/setup.sh"}},
	{"blazeface", blazefacePath, "blazeface", realpart.BlazeFace},
}

// BenchmarkDetect measures preprocess + one Run + decode per frame on
// vtest.avi frames, through ONNX Runtime at batch 1 and 4 with 1 and 2
// intra-op threads, and the same model through OpenCV DNN (blob making +
// forward; OpenCV's own thread count). ns/frame is the number to compare.
func BenchmarkDetect(b *testing.B) {
	requireRuntime(b)
	frames := videoFrames(b, vtestPath, 4)
	defer closeAll(frames)
	for _, m := range benchModels {
		b.Run(m.name, func(b *testing.B) {
			realpart.File(b, m.part, m.path)
			for _, batch := range []int{1, 4} {
				for _, threads := range []int{1, 2} {
					b.Run(fmt.Sprintf("ort/batch=%d/threads=%d", batch, threads), func(b *testing.B) {
						benchORT(b, m.path, m.format, frames[:batch], threads)
					})
				}
				b.Run(fmt.Sprintf("opencv-dnn/batch=%d", batch), func(b *testing.B) {
					benchDNN(b, m.path, m.format, frames[:batch])
				})
			}
		})
	}
}

func benchORT(b *testing.B, path, format string, frames []gocv.Mat, threads int) {
	d := openTest(b, Config{Path: path, Format: format, Threads: threads, InterOpThreads: 1, Batch: len(frames)})
	pool := d.NewInputPool()
	ins := make([]*Input, len(frames))
	for i := range ins {
		ins[i] = pool.Get()
		defer ins[i].Release()
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		for i, f := range frames {
			if err := d.Preprocess(f, ins[i]); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := d.Detect(ctx, ins); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*len(frames)), "ns/frame")
}

// dnnProbeEnv makes the test binary load a model with OpenCV DNN and run
// it once (TestOpenCVDNNProbe). OpenCV throws C++ exceptions that abort
// the process, so the benchmark asks a child process first.
const dnnProbeEnv = "OSPREY_DNN_PROBE"

func benchDNN(b *testing.B, path, format string, frames []gocv.Mat) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenCVDNNProbe$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d", dnnProbeEnv, path, format, len(frames)))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Skipf("OpenCV DNN cannot run %s: %s", path, dnnError(out.String()))
	}
	net, blob, err := dnnSetup(path, format, frames)
	if err != nil {
		b.Skip(err)
	}
	defer net.Close()
	defer blob.Close()
	names := outNames(&net)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		blob.Close()
		blob = dnnBlob(format, frames)
		net.SetInput(blob, "")
		for _, o := range net.ForwardLayers(names) {
			o.Close()
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*len(frames)), "ns/frame")
}

// dnnError picks OpenCV's diagnosis (failing node, parse error, expected
// condition, exception) out of a child's output.
func dnnError(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		for _, k := range []string{"ERROR during processing node", "parse error", "(expected:", "Exception message", "what():"} {
			if strings.Contains(l, k) {
				keep = append(keep, strings.TrimSpace(strings.TrimLeft(l, "> ")))
				break
			}
		}
	}
	if len(keep) > 0 {
		return strings.Join(keep, " | ")
	}
	if len(out) > 600 {
		out = out[len(out)-600:]
	}
	return out
}

func TestOpenCVDNNProbe(t *testing.T) {
	spec := os.Getenv(dnnProbeEnv)
	if spec == "" {
		t.Skip("child process of BenchmarkDetect only")
	}
	parts := strings.Split(spec, ",")
	n, _ := strconv.Atoi(parts[2])
	frames := videoFrames(t, vtestPath, n)
	defer closeAll(frames)
	net, blob, err := dnnSetup(parts[0], parts[1], frames)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	defer blob.Close()
	net.SetInput(blob, "")
	outs := net.ForwardLayers(outNames(&net))
	for _, o := range outs {
		if o.Empty() {
			t.Error("empty output")
		}
		o.Close()
	}
}

func dnnSetup(path, format string, frames []gocv.Mat) (gocv.Net, gocv.Mat, error) {
	net := gocv.ReadNetFromONNX(path)
	if net.Empty() {
		net.Close()
		return net, gocv.NewMat(), fmt.Errorf("OpenCV DNN read %s as an empty net", path)
	}
	return net, dnnBlob(format, frames), nil
}

// dnnBlob makes the model's input with OpenCV: BlobFromImages (NCHW) does
// the resize, swap to RGB, scale and mean; for NHWC models the NCHW blob
// is laid out again as NHWC, as OpenCV's importer takes the declared shape.
func dnnBlob(format string, frames []gocv.Mat) gocv.Mat {
	spec := formats[format]
	size := spec.size
	blob := gocv.NewMat()
	gocv.BlobFromImages(frames, &blob, float64(spec.scale), image.Pt(size, size),
		gocv.NewScalar(float64(-spec.shift/spec.scale), float64(-spec.shift/spec.scale), float64(-spec.shift/spec.scale), 0), !spec.bgr, false, gocv.MatTypeCV32F)
	if spec.layout == layoutNCHW {
		return blob
	}
	nhwc := gocv.NewMatWithSizes([]int{len(frames), size, size, 3}, gocv.MatTypeCV32F)
	src, _ := blob.DataPtrFloat32()
	dst, _ := nhwc.DataPtrFloat32()
	plane := size * size
	for n := range frames {
		s, d := src[n*3*plane:], dst[n*3*plane:]
		for i := range plane {
			d[3*i], d[3*i+1], d[3*i+2] = s[i], s[plane+i], s[2*plane+i]
		}
	}
	blob.Close()
	return nhwc
}

func outNames(net *gocv.Net) []string {
	var out []string
	for _, id := range net.GetUnconnectedOutLayers() {
		l := net.GetLayer(id)
		out = append(out, l.GetName())
		l.Close()
	}
	return out
}
