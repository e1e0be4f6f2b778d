package prune

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/quant"
	"github.com/osprey-vision/osprey/internal/matcheck"
)

// TestTable is the measurement behind docs/optimisation.md's pruning table
// (several minutes on 2 cores). Opt-in:
//
//	OSPREY_PRUNE_TABLE=1 go test ./infer/prune -run TestTable -v -timeout 30m
//
// OSPREY_PRUNE_ROUNDS sets the interleaved speed rounds (default 40).
// OSPREY_PRUNE_DIR keeps the variants in that folder and reuses those
// already there (to time again without remaking them).
func TestTable(t *testing.T) {
	if os.Getenv("OSPREY_PRUNE_TABLE") != "1" {
		t.Skip("opt-in measurement: OSPREY_PRUNE_TABLE=1 (see docs/optimisation.md)")
	}
	needSSD(t)
	matcheck.Leaks(t)
	const calibFrames, skip, evalN = 64, 64, 100
	dir := os.Getenv("OSPREY_PRUNE_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	type variant struct {
		name, path string
		opts       Options
		int8Of     string // quantise this variant's model
		res        quant.EvalResult
		macs       int64
		size       int64
		ms         float64
	}
	vs := []*variant{{name: "FP32 parent", path: ssdPath}}
	for _, r := range []float64{0.1, 0.25, 0.4} {
		vs = append(vs, &variant{name: fmt.Sprintf("prune %.2g", r), opts: Options{Ratio: r}})
	}
	vs = append(vs,
		&variant{name: "prune 0.25 global", opts: Options{Ratio: 0.25, Scope: Global}},
		&variant{name: "prune 0.4 global", opts: Options{Ratio: 0.4, Scope: Global}},
		&variant{name: "prune 0.25 l1", opts: Options{Ratio: 0.25, Importance: L1}},
		&variant{name: "INT8", int8Of: "FP32 parent"},
		&variant{name: "prune 0.1 + INT8", int8Of: "prune 0.1"},
		&variant{name: "prune 0.25 + INT8", int8Of: "prune 0.25"},
		&variant{name: "prune 0.25 global + INT8", int8Of: "prune 0.25 global"},
		&variant{name: "prune 0.4 global + INT8", int8Of: "prune 0.4 global"},
	)
	byName := map[string]*variant{}
	for _, v := range vs {
		byName[v.name] = v
		if v.path != "" {
			continue
		}
		v.path = filepath.Join(dir, strings.NewReplacer(" ", "_", "+", "").Replace(v.name)+".onnx")
		if _, err := os.Stat(v.path); err == nil {
			continue // OSPREY_PRUNE_DIR: made by an earlier run
		}
		start := time.Now()
		if v.int8Of != "" {
			_, err := quant.QuantizeFile(quant.FileConfig{Model: byName[v.int8Of].path, Out: v.path, Format: "ssd", Calib: vtest, Frames: calibFrames}, nil)
			if err != nil {
				t.Fatal(err)
			}
		} else {
			if _, err := PruneFile(FileConfig{Model: ssdPath, Out: v.path, Format: "ssd", Calib: vtest, Frames: calibFrames, Options: v.opts}, nil); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s made in %s", v.name, time.Since(start).Round(time.Second))
	}
	for _, v := range vs {
		m, err := quant.LoadModel(v.path)
		if err != nil {
			t.Fatal(err)
		}
		if v.macs, err = ConvMACs(m); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(v.path)
		if err != nil {
			t.Fatal(err)
		}
		v.size = st.Size()
		if v.path != ssdPath {
			if v.res, err = quant.Evaluate(quant.EvalConfig{Ref: ssdPath, Model: v.path, Format: "ssd", Frames: vtest, Skip: skip, N: evalN, Threads: 2}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	rounds := 40
	if n, err := strconv.Atoi(os.Getenv("OSPREY_PRUNE_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	paths := make([]string, len(vs))
	for i, v := range vs {
		paths[i] = v.path
	}
	ms := interleaved(t, paths, rounds)
	for i, v := range vs {
		v.ms = ms[i]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| variant | precision | recall | mAP@0.5 vs FP32 | file | Conv MACs | bare inference | speed vs FP32 |\n|---|---|---|---|---|---|---|---|\n")
	for _, v := range vs {
		acc := "| | |"
		if v.path != ssdPath {
			acc = fmt.Sprintf("%.4f | %.4f | %.4f", v.res.Precision, v.res.Recall, v.res.MAP50)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f MB | %.0f M (%.0f%%) | %.1f ms (%.1f fps) | %.2fx |\n", v.name, acc,
			float64(v.size)/1e6, float64(v.macs)/1e6, 100*float64(v.macs)/float64(vs[0].macs), v.ms, 1000/v.ms, vs[0].ms/v.ms)
	}
	fmt.Fprintf(&b, "\n%d reference detections; %d interleaved rounds\n", vs[1].res.RefDetections, rounds)
	fmt.Print(b.String())
}

// interleaved times Detect on one preprocessed held-out frame for every
// model in turn within each round (a warm-up and three timed runs each),
// so load from other processes hits all alike, and returns the median ms per model (the machine is shared: a
// burst of other work lands in a few rounds, which the median ignores). A pause before each run lets
// the previous session's ORT threads stop spinning (untimed).
func interleaved(t *testing.T, paths []string, rounds int) []float64 {
	log := slog.New(slog.DiscardHandler)
	type bench struct {
		d  *infer.Detector
		in *infer.Input
	}
	bs := make([]bench, len(paths))
	for i, p := range paths {
		d, err := infer.Open(infer.Config{Path: p, Format: "ssd", Threads: 2, Providers: []string{"cpu"}}, log)
		if err != nil {
			t.Fatal(err)
		}
		in := d.NewInputPool().Get()
		if err := quant.EachFrame(vtest, 100, 1, func(m gocv.Mat) error { return d.Preprocess(m, in) }); err != nil {
			t.Fatal(err)
		}
		bs[i] = bench{d, in}
		defer func() { in.Release(); d.Close() }()
		if _, err := d.Detect(context.Background(), []*infer.Input{in}); err != nil { // warm-up
			t.Fatal(err)
		}
	}
	spent := make([][]float64, len(paths))
	for range rounds {
		for i, b := range bs {
			// One untimed run brings the model's weights back into the
			// caches the other models used, then three timed runs.
			time.Sleep(20 * time.Millisecond)
			for r := range 4 {
				t0 := time.Now()
				if _, err := b.d.Detect(context.Background(), []*infer.Input{b.in}); err != nil {
					t.Fatal(err)
				}
				if r > 0 {
					spent[i] = append(spent[i], float64(time.Since(t0).Microseconds())/1000)
				}
			}
		}
	}
	ms := make([]float64, len(paths))
	for i := range ms {
		slices.Sort(spent[i])
		ms[i] = spent[i][len(spent[i])/2]
	}
	return ms
}
