package cascade_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/app"
	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
)

const (
	megamind  = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
	blazeface = "../third_party/blazeface/ONNX/face_detection_front_128x128_barracuda.onnx"
	ssd       = "../models/ssd_mobilenet_v2_coco.onnx"
)

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}

// TestConfigErrors: the `secondary:` section through the real registry and
// loader, every problem at once with file:line:col.
func TestConfigErrors(t *testing.T) {
	realpart.File(t, realpart.BlazeFace, blazeface)
	dir := t.TempDir()
	for _, tc := range []struct{ name, yaml, err string }{
		{"bad model path", `
secondary:
  - name: faces
    path: /missing/face.onnx
    classes: [person]
`, "p.yaml:5:11: secondary[0].path: model file /missing/face.onnx not found: fix the path"},
		{"unknown key", `
secondary:
  - name: faces
    path: BF
    classes: [person]
    reinfer_every: 3
`, "p.yaml:7:5: secondary[0]"},
		{"classify needs labels", `
secondary:
  - name: colour
    path: BF
    format: classify
    classes: [car]
`, "p.yaml:4:9: secondary[0].labels: required for format classify"},
		{"several at once", `
secondary:
  - name: faces
    path: BF
    format: retina
    classes: []
    padding: 2
    max_crops: 1000
  - name: faces
    path: BF
    output: sigmoid
    classes: [person]
`, strings.Join([]string{
			"p.yaml:6:13: secondary[0].format: \"retina\" is unknown: use one of auto,",
			"secondary[0].classes: required: the track labels this model runs on",
			"p.yaml:8:14: secondary[0].padding: must be in [0,1]",
			"p.yaml:9:16: secondary[0].max_crops: must be in 1..256, got 1000",
			"p.yaml:10:11: secondary[1].name: \"faces\" is used by another secondary model",
			"p.yaml:12:13: secondary[1].output: applies to format classify only",
		}, "\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Lines 1-2 are the header; tc.yaml starts with a newline.
			y := "name: p\nstreams: [{id: a, url: \"test://\"}]" + strings.ReplaceAll(tc.yaml, "BF", abs(t, blazeface))
			_, err := config.Parse(filepath.Join(dir, "p.yaml"), []byte(y), components.Builtin())
			require.Error(t, err, y)
			for _, want := range strings.Split(tc.err, "\n") {
				require.Contains(t, err.Error(), want, "file:\n%s", y)
			}
		})
	}
}

// TestPipelineFaces runs the cascade inside a real pipeline: the shipped
// SSD on Megamind.avi, the tracker, BlazeFace on person crops and the
// JSONL sink; the events that leave carry the face as a child and
// validate against the schema.
func TestPipelineFaces(t *testing.T) {
	realpart.File(t, realpart.SampleVideo, megamind)
	realpart.File(t, realpart.SSDModel, ssd)
	realpart.File(t, realpart.BlazeFace, blazeface)
	matcheck.Leaks(t)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "p.yaml"), []byte(fmt.Sprintf(`name: faces
streams:
  - {id: mm, url: "file://%s"}
model: {path: %s, format: ssd, labels: coco, threads: 2}
detect: {confidence: 0.5, classes: [person]}
track: {min_hits: 2}
secondary:
  - {name: faces, path: %s, classes: [person], min_size: 48, reinfer: 500ms, confidence: 0.6}
sinks:
  jsonl: {path: %s}
`, megamind, abs(t, ssd), abs(t, blazeface), events)), components.Builtin())
	require.NoError(t, err)
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{MaxFrames: 40})
	require.NoError(t, err)
	require.NoError(t, a.Run(context.Background()))
	f, err := os.Open(events)
	require.NoError(t, err)
	defer f.Close()
	withFace := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		require.NoError(t, event.Validate(sc.Bytes()), "event %s", sc.Text())
		var e event.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		for _, c := range e.Children {
			require.Equal(t, "faces", c.Model)
			require.Equal(t, "face", c.Label)
			withFace++
		}
	}
	require.Positive(t, withFace, "a track event carries Megamind's face")
}
