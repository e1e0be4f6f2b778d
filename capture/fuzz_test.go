package capture

import (
	"strings"
	"testing"
)

// FuzzParseURL: any string either parses or gives a "url: " error naming the
// field, never a panic; redaction never keeps a password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"file:///a.mp4", "/a.mp4", "rtsp://u:p@h:554/s", "rtsps://h/s", "v4l2:///dev/video0",
		"v4l2://3", "gst:videotestsrc ! appsink", "test://?fps=30&w=1280&h=720&frames=5",
		"htp://x", "rtsp://", "test://?fps=%zz", "gst:!", "v4l2://-1", "file://host/x", "file://u:secretpw@h/x", "v4l2://u:secretpw@x", "test://u:secretpw@?fps=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := parseURL(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "url: ") {
				t.Errorf("parseURL(%q) error %q lacks the url: field prefix", s, err)
			}
			if strings.Contains(s, "://u:secretpw@") && strings.Contains(err.Error(), "secretpw") {
				t.Errorf("parseURL(%q) error leaks the password: %q", s, err)
			}
			return
		}
		if ep.kind == 0 {
			t.Errorf("parseURL(%q) = no kind, nil error", s)
		}
		if r := Redact("rtsp://user:secretpw@" + s); strings.Count(r, "secretpw") > strings.Count(s, "secretpw") {
			t.Errorf("Redact leaks the password: %q", r)
		}
	})
}
