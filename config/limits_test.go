package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/capture"
)

func TestValidateLimitsStreams(t *testing.T) {
	var got []string
	add := func(path string, err error) { got = append(got, path+": "+err.Error()) }
	p := &Pipeline{}
	for i := range MaxStreams {
		p.Streams = append(p.Streams, capture.Config{ID: fmt.Sprint("s", i), URL: "test://"})
	}
	p.validateLimits(add)
	require.Empty(t, got, "exactly MaxStreams is allowed")
	p.Streams = append(p.Streams, capture.Config{ID: "one-too-many", URL: "test://"})
	p.validateLimits(add)
	require.Equal(t, []string{"streams: 65 streams is more than the limit of 64 per pipeline: split them over several pipeline files"}, got)
}

// TestFrameSizeLimitDefaults pins the per-stream frame size guard every
// stream gets when the file sets none (4K), and that a file can lower it.
func TestFrameSizeLimitDefaults(t *testing.T) {
	model := writeModel(t)
	p, err := Parse("limits.yaml", []byte(strings.Replace(good(model), "    realtime: true\n",
		"    realtime: true\n  - { id: cam, url: \"test://?w=3840&h=2160\", max_width: 1920, max_height: 1080 }\n", 1)))
	require.NoError(t, err)
	require.Equal(t, capture.DefaultMaxWidth, p.Streams[0].MaxWidth)
	require.Equal(t, capture.DefaultMaxHeight, p.Streams[0].MaxHeight)
	require.Equal(t, 1920, p.Streams[1].MaxWidth)
	require.Equal(t, 1080, p.Streams[1].MaxHeight)
}

// TestListenersLoopbackByDefault: a file that turns the preview and NATS on
// without addresses gets loopback listeners; metrics stay off unless asked.
func TestListenersLoopbackByDefault(t *testing.T) {
	model := writeModel(t)
	y := strings.Replace(good(model), "sinks:\n  jsonl: { path: events.jsonl }\nmetrics: { listen: 127.0.0.1:9090 }\n", "sinks:\n  preview: {}\n  nats: {}\n", 1)
	require.Contains(t, y, "preview: {}")
	p, err := Parse("listen.yaml", []byte(y))
	require.NoError(t, err)
	require.Empty(t, p.Metrics.Listen, "metrics server on by default")
	require.True(t, strings.HasPrefix(p.Sinks.Preview.Listen, "127.0.0.1:"), "preview listens on %q", p.Sinks.Preview.Listen)
	require.Empty(t, p.Sinks.NATS.URL)
	host := p.Sinks.NATS.Embedded.Host
	require.True(t, host == "" || host == "127.0.0.1", "embedded NATS host %q", host)
}
