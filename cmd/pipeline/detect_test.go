package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/internal/realpart"
)

const (
	detectFace     = "../../third_party/blazeface/ONNX/face_detection_front_128x128_barracuda.onnx"
	detectMegamind = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
)

func TestDetectUnreadableInput(t *testing.T) {
	realpart.File(t, realpart.BlazeFace, detectFace)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jpg")
	if err := os.WriteFile(bad, []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{bad, filepath.Join(dir, "missing.png"), filepath.Join(dir, "missing.mp4")} {
		if code := cmdDetect(context.Background(), []string{"--model", detectFace, "--format", "blazeface", in}); code != 1 {
			t.Errorf("%s: exit %d, want 1", in, code)
		}
	}
	if code := cmdDetect(context.Background(), []string{"--model", filepath.Join(dir, "none.onnx"), bad}); code != 1 {
		t.Errorf("missing model: exit %d, want 1", code)
	}
	if code := cmdDetect(context.Background(), []string{"--format", "blazeface"}); code != 2 {
		t.Errorf("no input: exit %d, want 2", code)
	}
}

// One Megamind frame through the JSON writer and the --out drawing.
func TestDetectJSONAndOut(t *testing.T) {
	realpart.File(t, realpart.BlazeFace, detectFace)
	det, err := infer.Open(infer.Config{Path: detectFace, Format: "blazeface"}, nil)
	if errors.Is(err, infer.ErrNoRuntime) {
		realpart.Missing(t, realpart.ORT, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	out := filepath.Join(t.TempDir(), "faces.jpg")
	var buf bytes.Buffer
	o := &detectOptions{json: true, out: out, frames: 11}
	w := &detectWriter{opts: o, det: det, stdout: &buf, outputs: 1}
	if err := w.source(context.Background(), detectMegamind); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 11 {
		t.Fatalf("%d JSON lines, want 11", len(lines))
	}
	var rec struct {
		Source     string `json:"source"`
		Frame      int    `json:"frame"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		Detections []struct {
			Label      string     `json:"label"`
			ClassID    int        `json:"class_id"`
			Confidence float64    `json:"confidence"`
			Box        [4]float64 `json:"box"`
		} `json:"detections"`
	}
	if err := json.Unmarshal(lines[10], &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Source != detectMegamind || rec.Frame != 10 || rec.Width != 720 || rec.Height != 528 || len(rec.Detections) == 0 {
		t.Fatalf("record %+v", rec)
	}
	if d := rec.Detections[0]; d.Label != "face" || d.ClassID != 0 || d.Confidence < 0.5 || d.Box[2] <= 0 {
		t.Errorf("detection %+v", d)
	}
	img := gocv.IMRead(out, gocv.IMReadColor)
	defer img.Close()
	if img.Cols() != 720 || img.Rows() != 528 {
		t.Errorf("--out image %dx%d", img.Cols(), img.Rows())
	}
}
