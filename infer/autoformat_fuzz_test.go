package infer

import (
	"os"
	"path/filepath"
	"testing"
)

// Metadata comes from user files: no input may panic the names parser.
func FuzzParsePyNames(f *testing.F) {
	for _, s := range []string{`{0: 'person', 1: "a's"}`, `['x', 'y']`, `{0: 'caf\xe9', 1: '\u00e9'}`, `{0: '\x'}`, `{`, `[`, `{9999999: 'a'}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names, err := parsePyNames(s)
		if err == nil && len(names) == 0 {
			t.Errorf("%q: no error and no names", s)
		}
	})
}

// Nor may a corrupt model file panic the metadata reader.
func FuzzReadMetadata(f *testing.F) {
	f.Add([]byte{0x72, 0x05, 0x0a, 0x01, 'k', 0x12, 0x00}) // field 14: {key: "k", value: ""}
	f.Add([]byte{0x08, 0x08, 0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x72, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "m.onnx")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = readMetadata(path)
	})
}
