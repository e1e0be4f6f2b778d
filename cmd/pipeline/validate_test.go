package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osprey-vision/osprey/internal/realpart"
)

// captureStderr runs fn with os.Stderr redirected and returns what it wrote.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	fn()
	os.Stderr = old
	w.Close()
	return <-done
}

// Each bad pipeline file gets exit code 1 and a file:line:col message, never a panic.
func TestValidateBadFiles(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(model, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	head := "streams:\n  - {id: a, url: test://}\nmodel: {path: " + model + ", format: ssd}\n"
	cases := map[string]struct{ yaml, want string }{
		"unknown-key":  {head + "detect: {everyy: 2}\n", `:4:10: detect.everyy: unknown field "everyy": did you mean "every"?`},
		"wrong-type":   {head + "detect: {batch: [1]}\n", ":4:17: detect.batch: "},
		"bad-duration": {head + "latency_budget: fast\n", `:4:17: latency_budget: time: invalid duration "fast"`},
		"missing-model": {"streams: [{id: a, url: test://}]\nmodel: {path: /none.onnx, format: ssd}\n",
			":2:15: model.path: model file /none.onnx not found"},
		"bad-scheme":   {"streams:\n  - {id: a, url: \"mms://cam\"}\nmodel: {path: " + model + ", format: ssd}\n", `:2:18: streams[0].url: unsupported scheme "mms"`},
		"duplicate-id": {"streams:\n  - {id: a, url: test://}\n  - {id: a, url: test://}\nmodel: {path: " + model + ", format: ssd}\n", `:3:10: streams[1].id: duplicate stream id "a"`},
		"not-yaml":     {"streams: [\n", ":1:10: "},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			var code int
			out := captureStderr(t, func() { code = dispatch(context.Background(), []string{"validate", path}) })
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, out)
			}
			if !strings.Contains(out, path+tc.want) {
				t.Fatalf("stderr:\n%s\nwant it to contain %q", out, path+tc.want)
			}
			// run refuses the same file the same way, before touching a model.
			out = captureStderr(t, func() { code = dispatch(context.Background(), []string{"run", path}) })
			if code != 1 || !strings.Contains(out, path+tc.want) {
				t.Fatalf("run: exit %d, stderr:\n%s", code, out)
			}
		})
	}
}

func TestValidateShippedPipelines(t *testing.T) {
	files, _ := filepath.Glob("../../pipelines/*.yaml")
	if len(files) == 0 {
		t.Fatal("no pipelines found")
	}
	realpart.File(t, realpart.SSDModel, "../../models/ssd_mobilenet_v2_coco.onnx")
	// Shipped pipelines name models/... relative to the repository root.
	wd, _ := os.Getwd()
	if err := os.Chdir("../.."); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	for i := range files {
		files[i] = strings.TrimPrefix(files[i], "../../")
	}
	var code int
	out := captureStderr(t, func() { code = dispatch(context.Background(), append([]string{"validate"}, files...)) })
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
