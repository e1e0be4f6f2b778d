package privacy_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/privacy"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*privacy.Config)
		err  string
	}{
		{name: "defaults", edit: func(*privacy.Config) {}},
		{name: "faces pixelated, a mask", edit: func(c *privacy.Config) {
			c.Redact, c.Method = []string{"face", "person"}, privacy.Pixelate
			c.Masks = [][][]float64{{{0, 0}, {0.2, 0}, {0.2, 0.2}}}
		}},
		{name: "unknown method", edit: func(c *privacy.Config) { c.Method = "smudge" },
			err: `method: "smudge" is unknown: use blur, pixelate or fill`},
		{name: "labels", edit: func(c *privacy.Config) { c.Redact = []string{"face", "", "face"} },
			err: "redact[1]: an empty label redacts nothing: name a detector label such as face or person\n" +
				`redact[2]: "face" is listed twice`},
		{name: "padding", edit: func(c *privacy.Config) { c.Padding = math.NaN() },
			err: "padding: must be in 0..1, got NaN: it grows each box by this share of its size on every side (0.1 suits faces)"},
		{name: "masks", edit: func(c *privacy.Config) { c.Masks = [][][]float64{{{0, 0}, {1.5, 0, 1}}} },
			err: "masks[0]: a polygon needs at least 3 points, got 2\nmasks[0][1]: a point is [x, y], got 3 numbers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := privacy.Defaults()
			tc.edit(&c)
			err := c.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.err)
		})
	}
}

// Bad privacy sections, top level and per stream, are reported with
// file:line:col and the field, through the real loader and registry.
func TestConfigErrorsArePositioned(t *testing.T) {
	model, _ := filepath.Abs("../models/blazeface_front_128.onnx")
	realpart.File(t, realpart.BlazeFace, model)
	head := "name: lobby\nmodel: {path: " + model + ", format: blazeface}\n"
	for _, tt := range []struct{ name, conf, err string }{
		{"method", "streams: [{id: a, url: test://}]\nprivacy: {redact: [face], method: blurr}\n",
			`p.yaml:4:35: privacy.method: "blurr" is unknown: use blur, pixelate or fill`},
		{"unknown key", "streams: [{id: a, url: test://}]\nprivacy: {redact: [face], mask: []}\n",
			`p.yaml:4:27: privacy.mask: unknown field "mask": did you mean "masks"?`},
		{"mask point", "streams: [{id: a, url: test://}]\nprivacy:\n  masks: [[[0, 0], [1, 0], [1, 2]]]\n",
			`p.yaml:5:28: privacy.masks[0][2]: y=2 outside [0,1]`},
		{"per-stream method", "streams:\n  - id: a\n    url: test://\n    privacy: {method: fill, padding: 2}\n",
			`p.yaml:6:38: streams[0].privacy.padding: must be in 0..1, got 2`},
		{"per-stream unknown key", "streams:\n  - id: a\n    url: test://\n    privacy: {redcat: [face]}\n",
			`p.yaml:6:15: streams[0].privacy.redcat: unknown field "redcat": did you mean "redact"?`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("p.yaml", []byte(head+tt.conf), components.Builtin())
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got\n%v\nwant it to contain\n%s", err, tt.err)
			}
		})
	}
}

// A stream's privacy section overrides the top-level one key by key.
func TestStreamOverride(t *testing.T) {
	model, _ := filepath.Abs("../models/blazeface_front_128.onnx")
	realpart.File(t, realpart.BlazeFace, model)
	conf := "name: lobby\nmodel: {path: " + model + ", format: blazeface}\n" +
		"privacy: {redact: [face], method: pixelate}\n" +
		"streams:\n  - {id: a, url: test://}\n  - {id: b, url: test://, privacy: {method: fill}}\n  - {id: c, url: test://, privacy: {redact: []}}\n"
	p, err := config.Parse("p.yaml", []byte(conf), components.Builtin())
	require.NoError(t, err)
	var sc *privacy.StageConfig
	for _, s := range p.Stages {
		if s.Name == "privacy" {
			sc, _ = s.Config.(*privacy.StageConfig)
		}
	}
	require.NotNil(t, sc)
	require.Equal(t, privacy.Config{Redact: []string{"face"}, Method: privacy.Pixelate, Padding: 0.1}, sc.For("a"))
	require.Equal(t, privacy.Config{Redact: []string{"face"}, Method: privacy.Fill, Padding: 0.1}, sc.For("b"))
	require.False(t, sc.For("c").Active(), "stream c turned redaction off")
}
