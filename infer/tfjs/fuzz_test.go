package tfjs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzConvert feeds mutated model.json files (with the synthetic graph's
// shard) to the converter: any result is fine except a panic or a model
// that does not build.
func FuzzConvert(f *testing.F) {
	g, outs := opsGraph()
	seedDir := f.TempDir()
	p := g.write(f, seedDir)
	b, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"modelTopology":{"node":[{"name":"x","op":"Placeholder"},{"name":"y","op":"Relu6","input":["x"]}]}}`))
	shard := g.data
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "group1-shard1of1.bin"), shard, 0o644); err != nil {
			t.Fatal(err)
		}
		mp := filepath.Join(dir, "model.json")
		if err := os.WriteFile(mp, data, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := Options{Input: "x", InputShape: []int64{-1, 7, 9, 4}}
		for _, o := range outs {
			opts.Outputs = append(opts.Outputs, Output{Tensor: o, Name: o})
		}
		_, _ = Convert(mp, opts)
	})
}
