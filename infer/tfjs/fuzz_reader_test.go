package tfjs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadModel feeds mutated model.json files, next to a small weight shard,
// to ReadModel, the importer's JSON reader: no panic and a lowercase tfjs
// error for anything it refuses. (FuzzConvert covers the converter.)
func FuzzReadModel(f *testing.F) {
	if b, err := os.ReadFile("../../third_party/coco-ssd/models/coco-ssd/model.json"); err == nil && len(b) < 64<<10 {
		f.Add(b)
	}
	f.Add([]byte(`{"modelTopology":{"node":[{"name":"x","op":"Placeholder","attr":{"dtype":{"type":"DT_FLOAT"}}}]},"weightsManifest":[{"paths":["w.bin"],"weights":[{"name":"c","shape":[2,2],"dtype":"float32"}]}]}`))
	shard := make([]byte, 64)
	for i := range shard {
		shard[i] = byte(i * 7)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "w.bin"), shard, 0o644); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "model.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := ReadModel(p)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "tfjs: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		if m == nil {
			t.Fatal("nil model and nil error")
		}
	})
}
