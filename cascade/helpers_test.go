package cascade

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/analytics"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/onnxgraph"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/object"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/stages/builtin"
	"github.com/osprey-vision/osprey/track"
)

const (
	vtestPath     = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
	megamindPath  = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
	blazefacePath = "../third_party/blazeface/ONNX/face_detection_front_128x128_barracuda.onnx"
	ssdPath       = "../models/ssd_mobilenet_v2_coco.onnx"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// colourModel writes a real colour classifier: the mean of each input
// channel (RGB after preprocessing), times 10, as the logits of classes
// red, green and blue. Its input is [N,3,32,32]; classes is how many
// output columns it declares (3, or another count to test the labels check).
func colourModel(t testing.TB, classes int) string {
	t.Helper()
	g := onnxgraph.NewGraph("colour")
	g.AddInput("images", onnxgraph.Float, onnxgraph.Shape(-1, 3, 32, 32)...)
	g.AddInitializer(onnxgraph.Int64Tensor("axes", []int64{2}, []int64{2, 3}))
	g.AddNode("ReduceSum", []string{"images", "axes"}, []string{"sum"}, onnxgraph.AttrInt("keepdims", 0))
	g.AddInitializer(onnxgraph.FloatTensor("scale", nil, []float32{10.0 / (32 * 32)}))
	out := "logits"
	if classes != 3 {
		out = "mean3"
	}
	g.AddNode("Mul", []string{"sum", "scale"}, []string{out})
	if classes != 3 {
		// Pad with zero columns: [N,3] -> [N,classes].
		g.AddInitializer(onnxgraph.Int64Tensor("pads", []int64{4}, []int64{0, 0, 0, int64(classes - 3)}))
		g.AddNode("Pad", []string{"mean3", "pads"}, []string{"logits"})
	}
	g.AddOutput("logits", onnxgraph.Float, onnxgraph.Shape(-1, int64(classes))...)
	m, err := g.Model(13)
	require.NoError(t, err)
	b, err := onnxgraph.Marshal(m)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "colour.onnx")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

// labelsFile writes labels, one per line.
func labelsFile(t testing.TB, labels ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "labels.txt")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(labels, "\n")+"\n"), 0o644))
	return path
}

// requireRuntime stops t (realpart) without ONNX Runtime; opening any
// model loads it.
func requireRuntime(t testing.TB) {
	t.Helper()
	realpart.File(t, realpart.BlazeFace, blazefacePath)
	d, err := infer.Open(infer.Config{Path: blazefacePath, Format: "blazeface"}, quietLog)
	if err != nil {
		realpart.Missing(t, realpart.ORT, err)
	}
	_ = d.Close()
}

// newStage builds the stage from models, closed when the test ends.
func newStage(t testing.TB, models ...Model) *Stage {
	t.Helper()
	c := Config{Secondary: models}
	require.NoError(t, c.Validate(stages.Env{}))
	s, err := New(c, &stages.Resources{Log: quietLog})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// videoRun is what a run of SSD + tracker + cascade on a video saw.
type videoRun struct {
	frames int
	// personTracks are the confirmed person tracks; withChild those that
	// got at least one child (face) at some point.
	personTracks, withChild map[uint64]bool
	// crops and childrenFound count crops run and the children they found.
	crops, childrenFound int
	// childrenHigh counts children centred in the top third of the person
	// box, where a standing person's head is: a plausibility check (the
	// rest are mostly dark jackets taken for faces).
	childrenHigh int
	// cascadeTime is the time spent in the secondary stage (crop,
	// preprocess, inference, bookkeeping); inferTime the inference runs'.
	cascadeTime, inferTime time.Duration
	// tracksWithChildren are tracks (on the frame they were seen) that had
	// children, for assertions.
	tracksWithChildren []object.Track
}

// runVideo runs the shipped SSD (persons), the tracker and s on the first n
// frames of path (all when n <= 0), at the file's frame rate on the media
// clock, one frame at a time.
func runVideo(t testing.TB, s *Stage, path string, n int) videoRun {
	t.Helper()
	realpart.File(t, realpart.SampleVideo, path)
	realpart.File(t, realpart.SSDModel, ssdPath)
	det, err := infer.Open(infer.Config{Path: ssdPath, Format: "ssd", Labels: "coco", Classes: []string{"person"}, Confidence: 0.5}, quietLog)
	require.NoError(t, err)
	defer det.Close()
	vc, err := gocv.VideoCaptureFile(path)
	require.NoError(t, err)
	defer vc.Close()
	fps := vc.Get(gocv.VideoCaptureFPS)
	if fps <= 0 {
		fps = 10
	}
	tr := builtin.NewTrack("test", track.DefaultConfig(), analytics.Config{})
	defer tr.Close(context.Background())
	run := videoRun{personTracks: map[uint64]bool{}, withChild: map[uint64]bool{}}
	epoch := time.Unix(0, 0)
	ctx := context.Background()
	for i := 0; n <= 0 || i < n; i++ {
		m := gocv.NewMat()
		if !vc.Read(&m) || m.Empty() {
			m.Close()
			break
		}
		f := stages.NewFrame("cam", uint64(i+1), picture.New(m))
		f.Media = epoch.Add(time.Duration(float64(i) / fps * float64(time.Second)))
		f.Captured = f.Media
		dets, err := det.DetectImage(m)
		require.NoError(t, err)
		f.Detections, f.Inferred = dets, true
		out, err := tr.Process(ctx, f)
		require.NoError(t, err)
		t0 := time.Now()
		out, err = s.ProcessBatch(ctx, out)
		run.cascadeTime += time.Since(t0)
		require.NoError(t, err)
		require.Len(t, out, 1)
		run.frames++
		now := frameTime(f)
		for _, tk := range f.Tracks {
			if tk.Confirmed && tk.Label == "person" {
				run.personTracks[tk.ID] = true
			}
			if len(tk.Children) > 0 {
				run.withChild[tk.ID] = true
				run.tracksWithChildren = append(run.tracksWithChildren, tk)
			}
			if ts := s.streams[f.Stream][tk.ID]; ts != nil {
				for _, r := range ts.results {
					if r != nil && r.at.Equal(now) {
						run.crops++
						run.childrenFound += len(r.children)
						for _, c := range r.children {
							if c.Box.Y+c.Box.H/2 < 1.0/3 {
								run.childrenHigh++
							}
						}
					}
				}
			}
		}
		f.Release()
	}
	var hm dto.Metric
	require.NoError(t, s.seconds.WithLabelValues(s.models[0].cfg.Name).(prometheus.Metric).Write(&hm))
	run.inferTime = time.Duration(hm.GetHistogram().GetSampleSum() * float64(time.Second))
	return run
}

func (r videoRun) String() string {
	perCrop := 0.0
	if r.crops > 0 {
		perCrop = float64(r.childrenFound) / float64(r.crops)
	}
	ms, inf := 0.0, 0.0
	if r.crops > 0 {
		ms = float64(r.cascadeTime.Microseconds()) / 1000 / float64(r.crops)
		inf = float64(r.inferTime.Microseconds()) / 1000 / float64(r.crops)
	}
	return fmt.Sprintf("frames %d, person tracks %d, with >=1 face %d, crops %d, faces %d (%.3f per crop, %d in the top third), stage %.2f ms per crop (%.0f crops/s), inference alone %.2f ms per crop",
		r.frames, len(r.personTracks), countIn(r.withChild, r.personTracks), r.crops, r.childrenFound, perCrop, r.childrenHigh, ms, 1000/max(ms, 1e-9), inf)
}

// countIn counts the keys of a that are in b.
func countIn(a, b map[uint64]bool) int {
	n := 0
	for k := range a {
		if b[k] {
			n++
		}
	}
	return n
}
