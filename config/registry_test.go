package config

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/stages"
)

// An isolated registry of test components: the loader decodes each section
// into the component's own type, runs the component's own checks and places
// their section-relative errors at the right line and column, with no
// built-in component linked in.
type fakeSource struct {
	ID    string        `yaml:"id"`
	URL   string        `yaml:"url"`
	Level int           `yaml:"level"`
	Every time.Duration `yaml:"every"`
}

type widgetStage struct {
	Widget struct {
		Size  int      `yaml:"size"`
		Parts []string `yaml:"parts"`
	} `yaml:"widget"`
	Gadget struct {
		On bool `yaml:"on"`
	} `yaml:"gadget"`
}

type probeSink struct {
	Target string `yaml:"target"`
	Tries  int    `yaml:"tries"`
}

func testRegistry() *stages.Registry {
	return stages.NewRegistry().
		AddSource(stages.NewSourcePlugin([]string{"fake"},
			func() fakeSource { return fakeSource{Level: 3, Every: time.Second} },
			func(c *fakeSource, _ stages.Env) error {
				if c.Level > 9 {
					return stages.Errorf("level", "must be at most 9, got %d", c.Level)
				}
				return nil
			}, nil)).
		AddStage(stages.NewStagePlugin("widget", []string{"widget", "gadget"},
			func() widgetStage { var w widgetStage; w.Widget.Size = 7; return w },
			func(c *widgetStage, env stages.Env) error {
				var errs []error
				if c.Widget.Size < 1 {
					errs = append(errs, stages.Errorf("widget.size", "must be >= 1, got %d", c.Widget.Size))
				}
				for i, p := range c.Widget.Parts {
					if p == "" {
						errs = append(errs, stages.Errorf("widget.parts[1]", "part %d is empty", i))
					}
				}
				return errors.Join(errs...)
			}, nil)).
		AddSink(stages.NewSinkPlugin("probe", func() probeSink { return probeSink{Tries: 2} },
			func(c *probeSink, env stages.Env) error {
				if c.Target == "" {
					return stages.Errorf("target", "required for pipeline %s", env.Pipeline)
				}
				return nil
			}, nil))
}

func TestIsolatedRegistryDecodesEachSectionIntoItsComponent(t *testing.T) {
	p, err := Parse("t.yaml", []byte(`name: iso
streams:
  - {id: a, url: "fake://1", level: 5}
widget: {parts: [x, y]}
sinks:
  probe: {target: here}
`), testRegistry())
	require.NoError(t, err)
	src, ok := p.Streams[0].Config.(*fakeSource)
	require.True(t, ok)
	require.Equal(t, fakeSource{ID: "a", URL: "fake://1", Level: 5, Every: time.Second}, *src, "defaults kept where the file is silent")
	w, ok := StageConfig[widgetStage](p, "widget")
	require.True(t, ok)
	require.Equal(t, 7, w.Widget.Size)
	require.Equal(t, []string{"x", "y"}, w.Widget.Parts)
	sec, _ := p.Stage("widget")
	require.True(t, sec.Present)
	pr, ok := SinkConfig[probeSink](p, "probe")
	require.True(t, ok)
	require.Equal(t, probeSink{Target: "here", Tries: 2}, *pr)
}

func TestIsolatedRegistryErrorsArePositioned(t *testing.T) {
	_, err := Parse("t.yaml", []byte(`name: iso
streams:
  - {id: a, url: "fake://1", level: 12}
  - {id: b, url: "rtsp://cam"}
widget:
  size: 0
  parts: [x, ""]
  colour: red
sinks:
  probe: {}
  nats: {}
`), testRegistry())
	require.EqualError(t, err, `t.yaml:4:18: streams[1].url: unsupported scheme "rtsp": use one of fake://
t.yaml:8:3: widget.colour: unknown field "colour": valid fields here are parts, size
t.yaml:11:3: sinks.nats: unknown field "nats": valid fields here are probe`)

	_, err = Parse("t.yaml", []byte(`name: iso
streams:
  - {id: a, url: "fake://1", level: 12}
  - {id: b, url: "rtsp://cam"}
widget:
  size: 0
  parts: [x, ""]
sinks:
  probe: {}
`), testRegistry())
	require.EqualError(t, err, `t.yaml:3:37: streams[0].level: must be at most 9, got 12
t.yaml:4:18: streams[1].url: unsupported scheme "rtsp": use one of fake://
t.yaml:6:9: widget.size: must be >= 1, got 0
t.yaml:7:14: widget.parts[1]: part 1 is empty
t.yaml:9:10: sinks.probe.target: required for pipeline iso`)
}

func TestIsolatedRegistryUnknownTopLevelKey(t *testing.T) {
	_, err := Parse("t.yaml", []byte("name: iso\nstreams: [{id: a, url: \"fake://\"}]\nwidgit: {}\n"), testRegistry())
	require.EqualError(t, err, `t.yaml:3:1: widgit: unknown field "widgit": did you mean "widget"?`)
}
