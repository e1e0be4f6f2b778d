package builtin

import (
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/require"
)

// detect.agnostic_nms reaches the detector's configuration; off by default.
func TestDetectAgnosticNMS(t *testing.T) {
	c := DetectDefaults()
	require.False(t, c.InferConfig(nil).AgnosticNMS)
	require.NoError(t, yaml.UnmarshalWithOptions([]byte("iou: 0.5\nagnostic_nms: true\n"), &c.Detect, yaml.Strict()))
	ic := c.InferConfig(nil)
	require.True(t, ic.AgnosticNMS)
	require.InDelta(t, 0.5, ic.IoU, 1e-7)
}
