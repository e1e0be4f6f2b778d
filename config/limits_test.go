package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/sink/natsink"
	"github.com/osprey-vision/osprey/sink/preview"
)

func TestValidateLimitsStreams(t *testing.T) {
	var got []string
	add := func(path string, err error) { got = append(got, path+": "+err.Error()) }
	p := &Pipeline{}
	for i := range MaxStreams {
		p.Streams = append(p.Streams, Stream{ID: fmt.Sprint("s", i), URL: "test://"})
	}
	p.validateLimits(add)
	require.Empty(t, got, "exactly MaxStreams is allowed")
	p.Streams = append(p.Streams, Stream{ID: "one-too-many", URL: "test://"})
	p.validateLimits(add)
	require.Equal(t, []string{"streams: 65 streams is more than the limit of 64 per pipeline: split them over several pipeline files"}, got)
}

// TestFrameSizeLimitDefaults pins the per-stream frame size guard every
// stream gets when the file sets none (4K), and that a file can lower it.
func TestFrameSizeLimitDefaults(t *testing.T) {
	model := writeModel(t)
	p, err := Parse("limits.yaml", []byte(strings.Replace(good(model), "    realtime: true\n",
		"    realtime: true\n  - { id: cam, url: \"test://?w=3840&h=2160\", max_width: 1920, max_height: 1080 }\n", 1)), components.Builtin())
	require.NoError(t, err)
	s0, s1 := p.Streams[0].Config.(*capture.Config), p.Streams[1].Config.(*capture.Config)
	require.Equal(t, capture.DefaultMaxWidth, s0.MaxWidth)
	require.Equal(t, capture.DefaultMaxHeight, s0.MaxHeight)
	require.Equal(t, 1920, s1.MaxWidth)
	require.Equal(t, 1080, s1.MaxHeight)
}

// TestListenersLoopbackByDefault: a file that turns the preview and NATS on
// without addresses gets loopback listeners; metrics stay off unless asked.
func TestListenersLoopbackByDefault(t *testing.T) {
	model := writeModel(t)
	y := strings.Replace(good(model), "sinks:\n  jsonl: { path: events.jsonl }\nmetrics: { listen: 127.0.0.1:9090 }\n", "sinks:\n  preview: {}\n  nats: {}\n", 1)
	require.Contains(t, y, "preview: {}")
	p, err := Parse("listen.yaml", []byte(y), components.Builtin())
	require.NoError(t, err)
	require.Empty(t, p.Metrics.Listen, "metrics server on by default")
	pc, _ := SinkConfig[preview.Config](p, "preview")
	nc, _ := SinkConfig[natsink.Config](p, "nats")
	require.True(t, strings.HasPrefix(pc.Listen, "127.0.0.1:"), "preview listens on %q", pc.Listen)
	require.Empty(t, nc.URL)
	host := nc.Embedded.Host
	require.True(t, host == "" || host == "127.0.0.1", "embedded NATS host %q", host)
}
