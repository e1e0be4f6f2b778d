package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
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
	// The offline output fills the frames the detector missed (10-30 % of
	// each object's) where a track bridges them; the bound is modest.
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
		{"track", "--det", "x", "--fps", "10", "--out", "y", "--delay", "1s"}, // a lag without --live
		{"track", "eval", "--gt", "a.txt"},                                    // gt without res
		{"track", "eval", "--gt", "a", "--res", "b", "--res", "c"},            // unpaired
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
	run := func(yaml string, extra ...string) (int, string, string) {
		cfg := filepath.Join(dir, "p.yaml")
		if err := os.WriteFile(cfg, []byte(head+yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		res := filepath.Join(dir, "res.txt")
		os.Remove(res)
		var code int
		stderr := captureStderr(t, func() {
			code = dispatch(context.Background(), append([]string{"track", "--det", det, "--fps", "10", "--config", cfg, "--out", res}, extra...))
		})
		b, _ := os.ReadFile(res)
		return code, string(b), stderr
	}
	code, res, stderr := run("track: {min_hits: 1, box: detection}\n", "--live")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := "1,1,10.00,10.00,20.00,40.00,0.7000,-1,-1,-1\n2,1,12.00,10.00,20.00,40.00,0.7000,-1,-1,-1\n3,1,15.00,10.00,20.00,40.00,0.7000,-1,-1,-1\n"; res != want {
		t.Fatalf("results:\n%s\nwant (min_hits 1, detection boxes):\n%s", res, want)
	}
	// The defaults confirm on the third hit: live, the track is reported
	// from then on; the offline output reports its first two frames too,
	// and smooths the boxes (the object moves 2 then 3 px: the smoothed x
	// differ from the detections' by less than a pixel).
	code, res, _ = run("", "--live")
	if code != 0 || strings.Count(res, "\n") != 1 || !strings.HasPrefix(res, "3,1,") {
		t.Fatalf("defaults, --live: exit %d, results %q; want one line on frame 3", code, res)
	}
	code, res, _ = run("")
	lines := strings.Split(strings.TrimSpace(res), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "1,1,") || !strings.HasPrefix(lines[2], "3,1,") {
		t.Fatalf("defaults, offline: exit %d, results %q; want frames 1-3 of track 1", code, res)
	}
	var xs []float64
	for _, l := range lines {
		x, err := strconv.ParseFloat(strings.Split(l, ",")[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	moved := false
	for i, d := range []float64{10, 12, 15} {
		moved = moved || xs[i] != d
		if math.Abs(xs[i]-d) >= 1 {
			moved = false
			break
		}
	}
	if !moved {
		t.Fatalf("offline x %v: want smoothed, within a pixel of the detections' 10, 12, 15", xs)
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

// The writers: the offline default reports every live row and more (the
// tracks' first frames, bridged gaps); --live --delay reports the live rows
// and, within the lag, first frames and short gaps; --min-streak drops
// short tracks from either.
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
	live, lagged, offline := rows("--live"), rows("--live", "--delay", "300ms"), rows()
	if len(lagged) <= len(live) || len(offline) <= len(live) {
		t.Fatalf("rows: live %d, --delay 300ms %d, offline %d; want more than live in both", len(live), len(lagged), len(offline))
	}
	for k := range live {
		if !lagged[k] || !offline[k] {
			t.Fatalf("live row %s missing: with --delay 300ms %v, offline %v", k, lagged[k], offline[k])
		}
	}
	if strict := rows("--live", "--min-streak", "10"); len(strict) >= len(live) {
		t.Fatalf("--live --min-streak 10: %d rows, want fewer than the live %d", len(strict), len(live))
	}
	if strict := rows("--min-streak", "10"); len(strict) >= len(offline) {
		t.Fatalf("--min-streak 10: %d rows, want fewer than the offline %d", len(strict), len(offline))
	}
}
