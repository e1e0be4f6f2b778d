package capture

import (
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct{ name, url, err string }{
		{"file", "file:///data/a.mp4", ""},
		{"bare path", "/data/a.mp4", ""},
		{"relative path", "clips/a.mp4", ""},
		{"rtsp", "rtsp://user:pw@10.0.0.5:554/stream1", ""},
		{"rtsps", "rtsps://cam.local/s", ""},
		{"v4l2 path", "v4l2:///dev/video0", ""},
		{"v4l2 index", "v4l2://1", ""},
		{"gst", "gst:videotestsrc ! videoconvert ! appsink", ""},
		{"gst appsink props", "gst:v4l2src ! appsink drop=true max-buffers=1", ""},
		{"test", "test://", ""},
		{"test params", "test://?fps=30&w=1280&h=720&frames=10", ""},
		{"empty", "", "url: missing (use file://, rtsp://, v4l2://, gst:, test://)"},
		{"bad scheme", "htp://x/y", `url: unsupported scheme "htp" (use file://, rtsp://, v4l2://, gst:, test://)`},
		{"file host", "file://data/a.mp4", `url: file URL "file://data/a.mp4" has host "data"; write file:///absolute/path (three slashes)`},
		{"rtsp no host", "rtsp:///x", `url: rtsp URL "rtsp:///x" has no host; write rtsp://host[:port]/path`},
		{"v4l2 bad", "v4l2://cam", `url: v4l2 URL "v4l2://cam": write v4l2:///dev/videoN or v4l2://N`},
		{"gst no appsink", "gst:videotestsrc ! autovideosink", `url: gst: pipeline must end in appsink, it ends in "autovideosink" (append "! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1")`},
		{"gst empty", "gst:", `url: empty gst: pipeline (write gst:"... ! appsink")`},
		{"test bad fps", "test://?fps=abc", `url: test:// parameter fps="abc": not a number`},
		{"test zero w", "test://?w=0", `url: test:// parameter w="0": out of range 16..16384`},
		{"test unknown", "test://?speed=2", `url: test:// parameter "speed" unknown (use fps, w, h, frames)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{URL: tc.url}.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.err {
				t.Errorf("Validate(%q):\n got %q\nwant %q", tc.url, got, tc.err)
			}
		})
	}
}

func TestValidateAllErrorsAtOnce(t *testing.T) {
	err := Config{URL: "htp://x", StallTimeout: -time.Second, BackoffMin: time.Minute, BackoffMax: time.Second, FPS: -1}.Validate()
	want := `url: unsupported scheme "htp" (use file://, rtsp://, v4l2://, gst:, test://)
stall_timeout: must not be negative, got -1s
backoff_min: 1m0s is larger than backoff_max 1s
fps: must be between 0 and 1000, got -1`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestNewNamesStream(t *testing.T) {
	_, err := New(Config{ID: "door", URL: "htp://x"}, nil, nil)
	want := `capture: stream "door": url: unsupported scheme "htp" (use file://, rtsp://, v4l2://, gst:, test://)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://admin:hunter2@10.0.0.5/s":               "rtsp://REDACTED@10.0.0.5/s",
		"rtsp://admin@10.0.0.5/s":                       "rtsp://REDACTED@10.0.0.5/s",
		"rtsp://10.0.0.5/s":                             "rtsp://10.0.0.5/s",
		"gst:rtspsrc location=rtsp://u:p@h/x ! appsink": "gst:rtspsrc location=rtsp://REDACTED@h/x ! appsink",
		"file:///a@b.mp4":                               "file:///a@b.mp4",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	minD, maxD := 500*time.Millisecond, 30*time.Second
	for n, cap := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second} {
		for range 50 {
			if d := backoff(minD, maxD, n); d < cap/2 || d > cap {
				t.Fatalf("backoff(n=%d) = %s, want in [%s, %s]", n, d, cap/2, cap)
			}
		}
	}
	for range 50 {
		if d := backoff(minD, maxD, 40); d < maxD/2 || d > maxD {
			t.Fatalf("backoff(n=40) = %s, want capped to [%s, %s]", d, maxD/2, maxD)
		}
	}
}

func TestRedactHidesCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://user:pw@cam/stream":                           "rtsp://REDACTED@cam/stream",
		"rtsp://cam/stream?token=abc&channel=1":               "rtsp://cam/stream?token=REDACTED&channel=1",
		"rtsp://cam/s?Password=x":                             "rtsp://cam/s?Password=REDACTED",
		"gst:rtspsrc location=rtsp://a:b@h/x?key=k ! appsink": "gst:rtspsrc location=rtsp://REDACTED@h/x?key=REDACTED ! appsink",
		"file:///videos/keyframes.mp4":                        "file:///videos/keyframes.mp4",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
