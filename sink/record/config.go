package record

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/stages"
)

// Modes of recording a stream.
const (
	// ModeAuto copies an RTSP camera's H.264/H.265 stream and encodes the
	// decoded frames of every other source (and of cameras sending another
	// codec, such as MJPEG).
	ModeAuto = "auto"
	// ModeEncode always encodes the decoded frames (libx264).
	ModeEncode = "encode"
)

// Spans of a clip.
const (
	// SpanEvent cuts pre_capture before the event to post_capture after it.
	SpanEvent = "event"
	// SpanTrack cuts from pre_capture before the track's start (when the
	// recorder saw it) to post_capture after its end, capped at max_clip.
	SpanTrack = "track"
)

// Config is the `sinks.record` section.
type Config struct {
	// Dir holds segments/ (the rolling buffer) and clips/ (the MP4 clips
	// that clip.ready events name, relative to Dir). Required.
	Dir string `yaml:"dir"`
	// Segment is the target segment length (default 2s). Clips are cut on
	// segment boundaries, which are key frames: a clip starts at most one
	// segment (or one camera key-frame interval, if longer) early.
	Segment time.Duration `yaml:"segment"`
	// PreCapture is how much video before the event a clip holds (default 5s).
	PreCapture time.Duration `yaml:"pre_capture"`
	// PostCapture is how much video after the event (or the track's end) a
	// clip holds (default 5s).
	PostCapture time.Duration `yaml:"post_capture"`
	// Events are the event types that get a clip (default line.crossed,
	// zone.entered, zone.loitering).
	Events []event.Type `yaml:"events"`
	// Classes, when set, limit clips to events of tracks with these labels.
	Classes []string `yaml:"classes"`
	// Zones, when set, limit clips of zone.* events to these zones.
	Zones []string `yaml:"zones"`
	// Lines, when set, limit clips of line.crossed events to these lines.
	Lines []string `yaml:"lines"`
	// Span is event (default) or track.
	Span string `yaml:"span"`
	// MaxClip caps a clip's length (default 2m).
	MaxClip time.Duration `yaml:"max_clip"`
	// Continuous keeps every segment until the retain limits delete it;
	// otherwise segments are kept only as long as clips may need them
	// (bufferAge) and clips are what remains.
	Continuous bool `yaml:"continuous"`
	// Retain bounds the disk the recorder uses.
	Retain RetainConfig `yaml:"retain"`
	// Mode is auto (default) or encode.
	Mode string `yaml:"mode"`
	// Encode configures re-encoding decoded frames.
	Encode EncodeConfig `yaml:"encode"`
	// FFmpeg is the ffmpeg binary (default "ffmpeg" on the PATH); ffprobe is
	// looked up next to it.
	FFmpeg string `yaml:"ffmpeg"`
}

// RetainConfig bounds the recorder's disk use; segments go oldest first.
type RetainConfig struct {
	// MaxAge deletes segments and clips older than this (default 24h).
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes bounds all streams' segments together (default 10 GiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// StreamMaxBytes bounds each stream's segments (0: only max_bytes).
	StreamMaxBytes int64 `yaml:"stream_max_bytes"`
	// ClipsMaxBytes bounds the clips, oldest deleted first (default 10 GiB).
	ClipsMaxBytes int64 `yaml:"clips_max_bytes"`
}

// EncodeConfig configures the encoder for sources without an encoded stream.
type EncodeConfig struct {
	// Bitrate is libx264's target in bits per second (default 2 Mbit/s).
	Bitrate int `yaml:"bitrate"`
	// Queue is how many frames may wait for the encoder; more are dropped,
	// counted in osprey_record_frames_dropped_total, and detection never
	// waits (default 16).
	Queue int `yaml:"queue"`
	// Threads is how many threads libx264 may use (default 1).
	Threads int `yaml:"threads"`
}

// Defaults returns the configuration to decode a `sinks.record` section over.
func Defaults() Config {
	return Config{
		Segment:     2 * time.Second,
		PreCapture:  5 * time.Second,
		PostCapture: 5 * time.Second,
		Events:      []event.Type{event.LineCrossed, event.ZoneEntered, event.Loitering},
		Span:        SpanEvent,
		MaxClip:     2 * time.Minute,
		Retain:      RetainConfig{MaxAge: 24 * time.Hour, MaxBytes: 10 << 30, ClipsMaxBytes: 10 << 30},
		Mode:        ModeAuto,
		Encode:      EncodeConfig{Bitrate: 2_000_000, Queue: 16, Threads: 1},
		FFmpeg:      "ffmpeg",
	}
}

// Validate reports every problem at once, with paths relative to the section.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, a ...any) { errs = append(errs, stages.Errorf(path, format, a...)) }
	if c.Dir == "" {
		bad("dir", "required: a directory for the segment buffer and the clips (e.g. /var/lib/osprey/record)")
	}
	if c.Segment < 500*time.Millisecond || c.Segment > time.Minute {
		bad("segment", "%v is out of range: use 500ms to 1m (2s suits clip cutting)", c.Segment)
	}
	if c.PreCapture < 0 || c.PreCapture > 10*time.Minute {
		bad("pre_capture", "%v is out of range: use 0 to 10m", c.PreCapture)
	}
	if c.PostCapture < 0 || c.PostCapture > 10*time.Minute {
		bad("post_capture", "%v is out of range: use 0 to 10m", c.PostCapture)
	}
	for i, t := range c.Events {
		switch {
		case !slices.Contains(event.Types, t):
			bad(fmt.Sprintf("events[%d]", i), "unknown event type %q: use one of %s", t, clipTypes())
		case t == event.ClipReady || t == event.SourceUp || t == event.SourceDown:
			bad(fmt.Sprintf("events[%d]", i), "%s events get no clip: use one of %s", t, clipTypes())
		}
	}
	if c.Span != SpanEvent && c.Span != SpanTrack {
		bad("span", "%q is unknown: use event or track", c.Span)
	}
	if c.MaxClip < c.PreCapture+c.PostCapture || c.MaxClip > time.Hour {
		bad("max_clip", "%v is out of range: use pre_capture+post_capture (%v) to 1h", c.MaxClip, c.PreCapture+c.PostCapture)
	}
	if c.Retain.MaxAge < 0 {
		bad("retain.max_age", "%v is negative: use 0 for no age limit", c.Retain.MaxAge)
	}
	for _, l := range []struct {
		key string
		v   int64
	}{{"max_bytes", c.Retain.MaxBytes}, {"stream_max_bytes", c.Retain.StreamMaxBytes}, {"clips_max_bytes", c.Retain.ClipsMaxBytes}} {
		if l.v < 0 {
			bad("retain."+l.key, "%d is negative: use 0 for no limit", l.v)
		}
	}
	if c.Mode != ModeAuto && c.Mode != ModeEncode {
		bad("mode", "%q is unknown: use auto (copy RTSP H.264/H.265, encode the rest) or encode", c.Mode)
	}
	if c.Encode.Bitrate < 100_000 || c.Encode.Bitrate > 50_000_000 {
		bad("encode.bitrate", "%d is out of range: use 100000 to 50000000 bits/s", c.Encode.Bitrate)
	}
	if c.Encode.Queue < 1 || c.Encode.Queue > 1000 {
		bad("encode.queue", "%d is out of range: use 1 to 1000 frames", c.Encode.Queue)
	}
	if c.Encode.Threads < 1 || c.Encode.Threads > 16 {
		bad("encode.threads", "%d is out of range: use 1 to 16", c.Encode.Threads)
	}
	if c.FFmpeg == "" {
		bad("ffmpeg", "required: the ffmpeg binary (apt-get install ffmpeg)")
	}
	return errors.Join(errs...)
}

// clipTypes lists the event types a clip can be made for.
func clipTypes() string {
	var out []string
	for _, t := range event.Types {
		if t != event.ClipReady && t != event.SourceUp && t != event.SourceDown {
			out = append(out, string(t))
		}
	}
	return strings.Join(out, ", ")
}

// wants reports whether e gets a clip.
func (c *Config) wants(e event.Event) bool {
	if !slices.Contains(c.Events, e.Type) {
		return false
	}
	if len(c.Classes) > 0 && e.Label != "" && !slices.Contains(c.Classes, e.Label) {
		return false
	}
	if len(c.Zones) > 0 && e.Zone != "" && !slices.Contains(c.Zones, e.Zone) {
		return false
	}
	if len(c.Lines) > 0 && e.Line != "" && !slices.Contains(c.Lines, e.Line) {
		return false
	}
	return true
}

// bufferAge is how long segments stay when recording is not continuous:
// a clip's whole span plus the longest the clipper waits for its end
// (segments a waiting clip needs are also pinned), and 10 s for events that
// arrive late.
func (c *Config) bufferAge() time.Duration {
	return c.PreCapture + c.PostCapture + 4*c.Segment + rtspTimeout + 10*time.Second
}
