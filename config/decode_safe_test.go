package config

import (
	"os"
	"testing"

	"github.com/goccy/go-yaml/parser"
	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/stages/builtin"
)

// The fuzzer's finding: a point with three values panicked inside the YAML
// decoder. nodeToValue reports the list at its position instead.
func TestNodeToValueArrayOverflow(t *testing.T) {
	for _, file := range []string{
		"../faults/testdata/findings/config-array-panic.yaml",
	} {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		f, err := parser.ParseBytes(data, 0)
		require.NoError(t, err)
		// The point is under zones:, which the track stage's config decodes.
		tc := builtin.TrackDefaults()
		err = nodeToValue(f.Docs[0].Body, &tc)
		require.Error(t, err)
		d := &decoder{file: "x.yaml"}
		d.yamlError("", err)
		require.Equal(t, "x.yaml: line 6 column 33: this list has 3 values, at most 2 allowed (a point is [x, y])", d.errs.Error())
	}
	// A good file decodes as before.
	data, err := os.ReadFile("../pipelines/demo.yaml")
	require.NoError(t, err)
	f, err := parser.ParseBytes(data, 0)
	require.NoError(t, err)
	p := defaults()
	require.NoError(t, nodeToValue(f.Docs[0].Body, &p))
	require.Equal(t, "demo", p.Name)
}
