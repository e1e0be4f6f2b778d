package motion_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/motion"
)

// TestGatingDefaultsOnForCameras checks the default docs/motion.md and the
// README promise: gating on for live cameras, off for recordings and test
// patterns, and `enabled` overriding it either way, per stream, without a
// stream's override leaking into the top-level section.
func TestGatingDefaultsOnForCameras(t *testing.T) {
	dir := t.TempDir()
	video, model := dir+"/clip.mp4", dir+"/model.onnx"
	require.NoError(t, os.WriteFile(model, []byte("not read by validation"), 0o644))
	for _, tc := range []struct {
		name string
		top  string
		want map[string]bool
	}{
		{"default", "", map[string]bool{"rtsp": true, "v4l2": true, "gst": true, "file": false, "test": false, "off": false, "forced": true}},
		{"off everywhere", "motion: {enabled: false}\n", map[string]bool{"rtsp": false, "v4l2": false, "gst": false, "file": false, "test": false, "off": false, "forced": true}},
		{"on everywhere", "motion: {enabled: true}\n", map[string]bool{"rtsp": true, "v4l2": true, "gst": true, "file": true, "test": true, "off": false, "forced": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "name: p\nmodel: {path: " + model + ", format: ssd}\n" + tc.top + `streams:
  - {id: rtsp, url: "rtsp://user:secret@10.0.0.5/live"}
  - {id: v4l2, url: "v4l2:///dev/video0"}
  - {id: gst, url: "gst:videotestsrc ! videoconvert ! appsink"}
  - {id: file, url: "` + video + `"}
  - {id: test, url: "test://"}
  - {id: off, url: "rtsp://10.0.0.6/live", motion: {enabled: false}}
  - {id: forced, url: "test://", motion: {enabled: true}}
`
			p, err := config.Parse("p.yaml", []byte(yaml), components.Builtin())
			require.NoError(t, err)
			var mc *motion.StageConfig
			for _, s := range p.Stages {
				if c, ok := s.Config.(*motion.StageConfig); ok {
					mc = c
				}
			}
			require.NotNil(t, mc, "no motion section decoded")
			got := map[string]bool{}
			for _, s := range p.Streams {
				cam, ok := s.Config.(interface{ Camera() bool })
				require.True(t, ok, "stream %s: its source config has no Camera method", s.ID)
				got[s.ID] = mc.Gated(s.ID, cam.Camera())
			}
			require.Equal(t, tc.want, got)
		})
	}
}
