package capture

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/capture/capturetest"
	"github.com/osprey-vision/osprey/stages"
)

const gstTestPipeline = "gst:videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1"

// TestGstPipeline reads through OpenCV's GStreamer backend, the path Jetson
// hardware decoding (nvv4l2decoder) takes, with a software test source.
func TestGstPipeline(t *testing.T) {
	capturetest.Run(t, newFunc(Config{ID: "g", URL: gstTestPipeline}), capturetest.Options{})
}

func TestGstBadPipelineRetries(t *testing.T) {
	src := mustNew(t, Config{ID: "g", URL: "gst:filesrc location=/nonexistent/x.mp4 ! decodebin ! videoconvert ! appsink", BackoffMin: 100 * time.Millisecond}, nil)
	defer src.Close(context.Background())
	if err := src.Connect(context.Background()); !errors.Is(err, stages.ErrNotConnected) {
		t.Fatalf("Connect: %v, want ErrNotConnected", err)
	}
}

func TestV4L2MissingDevice(t *testing.T) {
	var states []State
	src := mustNew(t, Config{ID: "usb", URL: "v4l2:///dev/video97", BackoffMin: 100 * time.Millisecond}, func(s State) { states = append(states, s) })
	defer src.Close(context.Background())
	err := src.Connect(context.Background())
	// A camera that is unplugged may come back: retry, do not fail for good.
	if !errors.Is(err, stages.ErrNotConnected) {
		t.Fatalf("Connect: %v, want ErrNotConnected", err)
	}
	want := `capture: stream "usb": v4l2:///dev/video97: open failed: opencv could not open it: stages: not connected`
	if err.Error() != want {
		t.Errorf("Connect:\n got %s\nwant %s", err, want)
	}
	if len(states) != 1 || states[0].Up {
		t.Errorf("states %+v, want one down", states)
	}
}
