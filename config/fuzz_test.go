package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/osprey-vision/osprey/components"
)

// posRE is the file:line:col every config error must start with.
var posRE = regexp.MustCompile(`^fuzz\.yaml(:\d+:\d+)?: `)

// FuzzParse feeds mutated pipeline files to the decoder: it must never panic,
// must return a pipeline or an error (not both, not neither), and every error
// line must name the file (with line:col when the YAML has a position).
// Seeds: the shipped pipelines plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../pipelines/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data, components.Builtin())
		if (p == nil) == (err == nil) {
			t.Fatalf("Parse returned pipeline %v and error %v", p != nil, err)
		}
		if err == nil {
			return
		}
		var es Errors
		if !errors.As(err, &es) {
			t.Fatalf("error is not config.Errors: %T %v", err, err)
		}
		// Each error starts with the position. (One error may span lines
		// when it quotes a key holding newlines.)
		for _, fe := range es {
			if !posRE.MatchString(fe.Error()) {
				t.Fatalf("error without file position: %q", fe.Error())
			}
		}
	})
}
