package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osprey-vision/osprey/track/eval"
	"github.com/osprey-vision/osprey/track/mot"
)

// writeScene writes a synthetic scene's ground truth and detections as
// MOTChallenge files.
func writeScene(t *testing.T, dir string, seed uint64) (gt, det string) {
	t.Helper()
	c, _ := eval.Preset("noisy", seed)
	c.Frames = 150
	sc := eval.Generate(c)
	var g, d strings.Builder
	for i, f := range sc.Frames {
		for _, o := range f.GT {
			fmt.Fprintf(&g, "%d,%d,%.3f,%.3f,%.3f,%.3f,1,-1,-1,-1\n", i+1, o.ID, o.Box.X, o.Box.Y, o.Box.W, o.Box.H)
		}
		for _, x := range f.Dets {
			if x.Box.W > 0 && x.Box.H > 0 {
				fmt.Fprintf(&d, "%d,-1,%.3f,%.3f,%.3f,%.3f,%.4f,-1,-1,-1\n", i+1, x.Box.X, x.Box.Y, x.Box.W, x.Box.H, x.Score)
			}
		}
	}
	seq := filepath.Join(dir, fmt.Sprintf("SEQ-%d", seed))
	if err := os.MkdirAll(filepath.Join(seq, "gt"), 0o755); err != nil {
		t.Fatal(err)
	}
	gt, det = filepath.Join(seq, "gt", "gt.txt"), filepath.Join(seq, "det.txt")
	for p, s := range map[string]string{gt: g.String(), det: d.String()} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return gt, det
}

// track --det writes MOTChallenge results that track eval scores; the JSON
// and the text agree, and they match eval.Evaluate on the same files.
func TestTrackAndEval(t *testing.T) {
	dir := t.TempDir()
	var args []string
	for seed := uint64(1); seed <= 2; seed++ {
		gt, det := writeScene(t, dir, seed)
		res := filepath.Join(dir, fmt.Sprintf("res-%d.txt", seed))
		var code int
		stderr := captureStderr(t, func() {
			code = dispatch(context.Background(), []string{"track", "--det", det, "--fps", "30", "--out", res})
		})
		if code != 0 {
			t.Fatalf("track: exit %d: %s", code, stderr)
		}
		frames, err := mot.ReadFile(res, mot.Sorted)
		if err != nil || len(frames) < 100 {
			t.Fatalf("results: %v, %d frames", err, len(frames))
		}
		args = append(args, "--gt", gt, "--res", res)
	}
	var js bytes.Buffer
	if code := cmdTrackEval(append(args, "--json"), &js); code != 0 {
		t.Fatalf("eval --json: exit %d", code)
	}
	var out struct {
		Sequences []seqMetrics
		Combined  seqMetrics
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatalf("%v\n%s", err, js.String())
	}
	if len(out.Sequences) != 2 || out.Sequences[0].Name != "SEQ-1" || out.Combined.Name != "combined" {
		t.Fatalf("json: %s", js.String())
	}
	r, _, err := evalPair(args[1], args[3])
	if err != nil {
		t.Fatal(err)
	}
	s := out.Sequences[0]
	if s.MOTA != r.MOTA || s.IDF1 != r.IDF1 || s.HOTA != r.HOTA || s.IDSW != r.IDSwitches || s.GTBoxes != r.GT {
		t.Fatalf("json %+v disagrees with eval %v", s, r)
	}
	// Only matched tracks are written (the detector misses 10-30 % of each
	// object's frames and nothing covers them), hence the modest bound.
	if s.MOTA < 0.6 || s.IDF1 < 0.7 {
		t.Errorf("synthetic noisy scene: MOTA %.3f IDF1 %.3f, want >= 0.6 and 0.7", s.MOTA, s.IDF1)
	}
	if c := out.Combined; c.GTBoxes != out.Sequences[0].GTBoxes+out.Sequences[1].GTBoxes || c.IDSW != out.Sequences[0].IDSW+out.Sequences[1].IDSW {
		t.Fatalf("combined %+v is not the sum", c)
	}
	var text bytes.Buffer
	if code := cmdTrackEval(args, &text); code != 0 {
		t.Fatalf("eval: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "MOTA") || !strings.Contains(lines[1], "SEQ-1") ||
		!strings.Contains(lines[1], fmt.Sprintf("%.3f", s.MOTA)) || !strings.Contains(lines[3], "combined") {
		t.Fatalf("text:\n%s", text.String())
	}
}

// Bad input is an error with the file and line, exit 1, never a panic;
// bad flags are exit 2.
func TestTrackBadInput(t *testing.T) {
	dir := t.TempDir()
	good := "1,-1,10,10,20,40,0.9,-1,-1,-1\n"
	cases := []struct{ name, det, want string }{
		{"field count", good + "2,-1,10,10,20\n", "det.txt:2: want 6 to 10 comma-separated fields"},
		{"nan", good + "2,-1,NaN,10,20,40,0.9,-1,-1,-1\n", "det.txt:2: field 3 (x): NaN is not a finite number"},
		{"negative size", good + "2,-1,10,10,-20,40,0.9,-1,-1,-1\n", "det.txt:2: box size -20x40: width and height must be positive"},
		{"out of order", "3" + good[1:] + good, "det.txt:2: frame 1 comes after frame 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			det := filepath.Join(dir, "det.txt")
			if err := os.WriteFile(det, []byte(tc.det), 0o644); err != nil {
				t.Fatal(err)
			}
			var code int
			stderr := captureStderr(t, func() {
				code = dispatch(context.Background(), []string{"track", "--det", det, "--fps", "10", "--out", filepath.Join(dir, "res.txt")})
			})
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.want)
			}
		})
	}
	for _, args := range [][]string{
		{"track", "--det", "x.txt", "--out", "y.txt"}, // no fps
		{"track", "--fps", "10", "--out", "y.txt"},    // no det
		{"track", "--det", "x", "--fps", "10", "--out", "y", "--delay", "-1s"},
		{"track", "--det", "x", "--fps", "10", "--out", "y", "--min-streak", "-2"},
		{"track", "eval", "--gt", "a.txt"},                         // gt without res
		{"track", "eval", "--gt", "a", "--res", "b", "--res", "c"}, // unpaired
	} {
		var code int
		captureStderr(t, func() { code = dispatch(context.Background(), args) })
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	var code int
	stderr := captureStderr(t, func() {
		code = cmdTrackEval([]string{"--gt", filepath.Join(dir, "missing.txt"), "--res", filepath.Join(dir, "res.txt")}, os.Stdout)
	})
	if code != 1 || !strings.Contains(stderr, "missing.txt") {
		t.Fatalf("missing gt: exit %d, %q", code, stderr)
	}
}

// --config takes the track: section of a pipeline file, and refuses an
// invalid one with its field path.
func TestTrackConfigFile(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(model, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	det := filepath.Join(dir, "det.txt")
	// One object seen on 3 frames at score 0.7 (below confirm_score).
	if err := os.WriteFile(det, []byte("1,-1,10,10,20,40,0.7\n2,-1,12,10,20,40,0.7\n3,-1,15,10,20,40,0.7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	head := "streams:\n  - {id: a, url: test://}\nmodel: {path: " + model + ", format: ssd}\n"
	run := func(yaml string) (int, string, string) {
		cfg := filepath.Join(dir, "p.yaml")
		if err := os.WriteFile(cfg, []byte(head+yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		res := filepath.Join(dir, "res.txt")
		os.Remove(res)
		var code int
		stderr := captureStderr(t, func() {
			code = dispatch(context.Background(), []string{"track", "--det", det, "--fps", "10", "--config", cfg, "--out", res})
		})
		b, _ := os.ReadFile(res)
		return code, string(b), stderr
	}
	code, res, stderr := run("track: {min_hits: 1, box: detection}\n")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := "1,1,10.00,10.00,20.00,40.00,0.7000,-1,-1,-1\n2,1,12.00,10.00,20.00,40.00,0.7000,-1,-1,-1\n3,1,15.00,10.00,20.00,40.00,0.7000,-1,-1,-1\n"; res != want {
		t.Fatalf("results:\n%s\nwant (min_hits 1, detection boxes):\n%s", res, want)
	}
	// The defaults confirm on the third hit.
	code, res, _ = run("")
	if code != 0 || strings.Count(res, "\n") != 1 || !strings.HasPrefix(res, "3,1,") {
		t.Fatalf("defaults: exit %d, results %q; want one line on frame 3", code, res)
	}
	code, _, stderr = run("track: {box: smooth}\n")
	if code != 1 || !strings.Contains(stderr, "track.box") {
		t.Fatalf("bad track config: exit %d, %q", code, stderr)
	}
	// The newer keys: positioned in the file, with the field and the bound.
	code, _, stderr = run("track:\n  camera_motion: true\n  part_cover: 1.5\n")
	if want := "p.yaml:6:15: track.part_cover: must be in [0,1], got 1.5"; code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("part_cover 1.5: exit %d, %q; want %q", code, stderr, want)
	}
	code, _, stderr = run("track:\n  camera_motion: sometimes\n")
	if want := "p.yaml:5:18: track.camera_motion:"; code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("camera_motion: sometimes: exit %d, %q; want %q", code, stderr, want)
	}
}

func TestSequenceName(t *testing.T) {
	for in, want := range map[string]string{
		"data/KITTI-17/gt/gt.txt": "KITTI-17",
		"KITTI-17/gt.txt":         "KITTI-17",
		"gt.txt":                  "gt",
		"runs/tud.txt":            "tud",
	} {
		if got := sequenceName(in); got != want {
			t.Errorf("sequenceName(%q) = %q, want %q", in, got, want)
		}
	}
}

// --delay and --min-streak reach the offline writer: with a lag the
// tracks' first frames and short gaps are reported too, so there are more
// rows than the live output and the same IDs.
func TestTrackWriterFlags(t *testing.T) {
	dir := t.TempDir()
	_, det := writeScene(t, dir, 1)
	rows := func(extra ...string) map[string]bool {
		t.Helper()
		res := filepath.Join(dir, "res.txt")
		args := append([]string{"track", "--det", det, "--fps", "30", "--out", res}, extra...)
		var code int
		stderr := captureStderr(t, func() { code = dispatch(context.Background(), args) })
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", extra, code, stderr)
		}
		b, err := os.ReadFile(res)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Split(l, ",")
			out[f[0]+","+f[1]] = true // frame,id
		}
		return out
	}
	live, lagged := rows(), rows("--delay", "300ms")
	if len(lagged) <= len(live) {
		t.Fatalf("--delay 300ms: %d rows, want more than the live %d", len(lagged), len(live))
	}
	for k := range live {
		if !lagged[k] {
			t.Fatalf("--delay 300ms lost live row %s", k)
		}
	}
	if strict := rows("--min-streak", "10"); len(strict) >= len(live) {
		t.Fatalf("--min-streak 10: %d rows, want fewer than the live %d", len(strict), len(live))
	}
}
