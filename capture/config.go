// Package capture turns stream URLs into stages.Source implementations: video
// files, RTSP cameras (OpenCV's FFmpeg backend), V4L2/USB cameras, raw
// GStreamer pipelines (Jetson hardware decode) and a synthetic test pattern.
// A source owns its reconnection: when a live stream is lost or stalls it
// retries with capped exponential back-off until its context ends, and it
// reports every up/down transition through a callback.
package capture

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/osprey-vision/osprey/stages"
)

// Defaults applied by Config.ApplyDefaults to zero fields.
const (
	DefaultStallTimeout = 10 * time.Second
	DefaultOpenTimeout  = 15 * time.Second
	DefaultBackoffMin   = 500 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	DefaultMaxWidth     = 3840
	DefaultMaxHeight    = 2160
	// DefaultTestWidth, DefaultTestHeight and DefaultTestFPS size the test:// pattern.
	DefaultTestWidth  = 640
	DefaultTestHeight = 480
	DefaultTestFPS    = 30
)

// Config describes one stream. Zero durations and sizes mean "use the default"
// (see ApplyDefaults).
type Config struct {
	// ID is the stream ID from the pipeline YAML; it names the stream in frames,
	// states and logs.
	ID string `yaml:"id"`
	// URL selects the backend: file:///path (or a bare path), rtsp:// or
	// rtsps://, v4l2:///dev/videoN or v4l2://N, gst:<pipeline ending in appsink>,
	// test://[?fps=30&w=1280&h=720&frames=N].
	URL string `yaml:"url"`
	// Loop restarts a finite source (file, test://?frames=N) at its end instead
	// of returning stages.ErrEndOfStream.
	Loop bool `yaml:"loop"`
	// Realtime paces a file at its native frame rate, like a camera.
	Realtime bool `yaml:"realtime"`
	// TCP forces RTSP over TCP (interleaved). Off, FFmpeg negotiates: UDP first,
	// TCP as a fallback.
	TCP bool `yaml:"tcp"`
	// StallTimeout is how long a connected stream may go without a frame (or
	// an open may take) before it is treated as lost.
	StallTimeout time.Duration `yaml:"stall_timeout"`
	// OpenTimeout bounds one attempt to open the stream (RTSP handshake and
	// stream probing); a failed or timed-out attempt counts as down.
	OpenTimeout time.Duration `yaml:"open_timeout"`
	// BackoffMin and BackoffMax bound the pause between reconnection attempts;
	// it doubles after each failure, with jitter.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// Width and Height size the test:// pattern and are a hint for v4l2.
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
	// FPS is the test:// pattern's rate and a hint for v4l2.
	FPS float64 `yaml:"fps"`
	// MaxWidth and MaxHeight reject frames larger than this (memory guard).
	MaxWidth  int `yaml:"max_width"`
	MaxHeight int `yaml:"max_height"`
}

// ApplyDefaults fills zero fields with the package defaults.
func (c *Config) ApplyDefaults() {
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.MaxWidth == 0 {
		c.MaxWidth = DefaultMaxWidth
	}
	if c.MaxHeight == 0 {
		c.MaxHeight = DefaultMaxHeight
	}
}

// Validate reports every problem in c at once, each naming its YAML field.
// Zero fields are valid (they take defaults).
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, a ...any) { errs = append(errs, stages.Errorf(path, format, a...)) }
	if _, err := parseURL(c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.StallTimeout < 0 {
		add("stall_timeout", "must not be negative, got %s", c.StallTimeout)
	}
	if c.OpenTimeout < 0 {
		add("open_timeout", "must not be negative, got %s", c.OpenTimeout)
	}
	if c.BackoffMin < 0 {
		add("backoff_min", "must not be negative, got %s", c.BackoffMin)
	}
	if c.BackoffMax < 0 {
		add("backoff_max", "must not be negative, got %s", c.BackoffMax)
	}
	if c.BackoffMin > 0 && c.BackoffMax > 0 && c.BackoffMin > c.BackoffMax {
		add("backoff_min", "%s is larger than backoff_max %s", c.BackoffMin, c.BackoffMax)
	}
	if c.Width < 0 || c.Height < 0 {
		add("width", "must not be negative, got %dx%d", c.Width, c.Height)
	}
	if c.FPS < 0 || c.FPS > 1000 {
		add("fps", "must be between 0 and 1000, got %g", c.FPS)
	}
	if c.MaxWidth < 0 || c.MaxHeight < 0 {
		add("max_width", "must not be negative, got %dx%d", c.MaxWidth, c.MaxHeight)
	}
	return errors.Join(errs...)
}

// kind is a capture backend.
type kind int

const (
	kindFile kind = iota + 1
	kindRTSP
	kindV4L2
	kindGst
	kindTest
)

func (k kind) String() string {
	switch k {
	case kindFile:
		return "file"
	case kindRTSP:
		return "rtsp"
	case kindV4L2:
		return "v4l2"
	case kindGst:
		return "gst"
	case kindTest:
		return "test"
	}
	return "unknown"
}

// live reports whether the backend is a live stream that can be lost and
// reconnected (as opposed to a finite, local one).
func (k kind) live() bool { return k == kindRTSP || k == kindV4L2 || k == kindGst }

// endpoint is a parsed stream URL.
type endpoint struct {
	kind kind
	// target is what OpenCV opens: a file path, the RTSP URL, a device path,
	// or a GStreamer pipeline.
	target string
	// device is the V4L2 device index, -1 when target is a path.
	device int
	// test:// parameters (zero: not given).
	w, h, frames int
	fps          float64
}

const schemeHint = "(use file://, rtsp://, v4l2://, gst:, test://)"

// parseURL parses a stream URL; errors name the url field.
func parseURL(raw string) (endpoint, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return endpoint{}, stages.Errorf("url", "missing %s", schemeHint)
	}
	if rest, ok := strings.CutPrefix(s, "gst:"); ok {
		p := strings.TrimSpace(rest)
		if p == "" {
			return endpoint{}, errors.New(`url: empty gst: pipeline (write gst:"... ! appsink")`)
		}
		elems := strings.Split(p, "!")
		last := strings.Fields(elems[len(elems)-1])
		if len(last) == 0 || last[0] != "appsink" {
			return endpoint{}, stages.Errorf("url", "gst: pipeline must end in appsink, it ends in %q (append \"! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1\")", strings.TrimSpace(elems[len(elems)-1]))
		}
		return endpoint{kind: kindGst, target: p, device: -1}, nil
	}
	if !strings.Contains(s, "://") {
		// A bare path is a file.
		return endpoint{kind: kindFile, target: s, device: -1}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return endpoint{}, stages.Errorf("url", "cannot parse %q: %v", Redact(s), unwrapURLError(err))
	}
	switch strings.ToLower(u.Scheme) {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return endpoint{}, stages.Errorf("url", "file URL %q has host %q; write file:///absolute/path (three slashes)", Redact(s), u.Hostname())
		}
		if u.Path == "" {
			return endpoint{}, stages.Errorf("url", "file URL %q has no path; write file:///absolute/path", Redact(s))
		}
		return endpoint{kind: kindFile, target: u.Path, device: -1}, nil
	case "rtsp", "rtsps":
		if u.Host == "" {
			return endpoint{}, stages.Errorf("url", "%s URL %q has no host; write rtsp://host[:port]/path", u.Scheme, Redact(s))
		}
		return endpoint{kind: kindRTSP, target: s, device: -1}, nil
	case "v4l2":
		// v4l2:///dev/video0 (path) or v4l2://0 (index).
		if u.Host != "" {
			n, err := strconv.Atoi(u.Host)
			if err != nil || n < 0 || u.Path != "" {
				return endpoint{}, stages.Errorf("url", "v4l2 URL %q: write v4l2:///dev/videoN or v4l2://N", Redact(s))
			}
			return endpoint{kind: kindV4L2, target: u.Host, device: n}, nil
		}
		if u.Path == "" {
			return endpoint{}, stages.Errorf("url", "v4l2 URL %q has no device; write v4l2:///dev/videoN or v4l2://N", Redact(s))
		}
		return endpoint{kind: kindV4L2, target: u.Path, device: -1}, nil
	case "test":
		return parseTestURL(u)
	default:
		return endpoint{}, stages.Errorf("url", "unsupported scheme %q %s", u.Scheme, schemeHint)
	}
}

func parseTestURL(u *url.URL) (endpoint, error) {
	ep := endpoint{kind: kindTest, target: "test", device: -1}
	q := u.Query()
	for key, vals := range q {
		v := vals[len(vals)-1]
		var err error
		switch key {
		case "fps":
			ep.fps, err = strconv.ParseFloat(v, 64)
			if err == nil && (ep.fps <= 0 || ep.fps > 1000) {
				err = errors.New("out of range 0..1000")
			}
		case "w":
			ep.w, err = strconv.Atoi(v)
			if err == nil && (ep.w < 16 || ep.w > 16384) {
				err = errors.New("out of range 16..16384")
			}
		case "h":
			ep.h, err = strconv.Atoi(v)
			if err == nil && (ep.h < 16 || ep.h > 16384) {
				err = errors.New("out of range 16..16384")
			}
		case "frames":
			ep.frames, err = strconv.Atoi(v)
			if err == nil && ep.frames < 1 {
				err = errors.New("must be at least 1")
			}
		default:
			return endpoint{}, stages.Errorf("url", "test:// parameter %q unknown (use fps, w, h, frames)", key)
		}
		if err != nil {
			return endpoint{}, stages.Errorf("url", "test:// parameter %s=%q: %v", key, v, unwrapNumError(err))
		}
	}
	return ep, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func unwrapNumError(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return fmt.Errorf("not a number")
	}
	return err
}

// userinfo matches the credentials part of any URL, also inside a gst:
// pipeline string (rtspsrc location=rtsp://user:pass@host/...).
var userinfo = regexp.MustCompile(`://[^/@\s"']*@`)

// Redact returns s with the user:password part of every URL in it replaced,
// so that stream URLs can be logged and shown in events.
func Redact(s string) string {
	s = userinfo.ReplaceAllString(s, "://REDACTED@")
	return secretParam.ReplaceAllString(s, "${1}REDACTED")
}

// secretParam matches the value of query parameters that carry credentials
// (?token=..., &password=..., &key=...), in URLs and in gst: strings.
var secretParam = regexp.MustCompile(`(?i)([?&;](?:access_token|token|password|passwd|pass|pwd|secret|key|apikey|api_key|auth|sig|signature)=)[^&\s"';!]*`)
