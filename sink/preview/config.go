package preview

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/osprey-vision/osprey/stages"
)

// Codec names accepted in Config.Codec.
const (
	// CodecH264 encodes with libx264, constrained baseline (the default).
	// WebRTC browsers must decode it (RFC 7742), it is what hardware
	// encoders (Jetson) produce, and in Debian's Chromium it showed about a
	// third of VP8's capture-to-decode latency at a similar encode cost.
	CodecH264 = "h264"
	// CodecVP8 encodes with libvpx. Also mandatory in WebRTC browsers; use
	// it where H.264 is unavailable (Chromium builds without it).
	CodecVP8 = "vp8"
)

// Config configures the preview sink. The zero value is not valid; call
// Defaults (New does) and then override fields.
type Config struct {
	// Listen is the address of the sink's own HTTP server (page, WHEP, stats,
	// MJPEG). Empty disables the server; mount Handler yourself then.
	Listen string `yaml:"listen"`
	// Token, when set, is required on every request: header
	// "Authorization: Bearer <token>" or query "?token=<token>".
	Token string `yaml:"token"`
	// CORSOrigins lists the origins (scheme://host[:port], or "*") whose
	// pages may call the API and WHEP from a browser, e.g. a dashboard
	// embedding the stream. Empty: same origin only.
	CORSOrigins []string `yaml:"cors_origins"`
	// Codec is h264 (default) or vp8.
	Codec string `yaml:"codec"`
	// Bitrate is the encoder's target in bits per second.
	Bitrate int `yaml:"bitrate"`
	// MaxWidth and MaxHeight cap the encoded size; larger frames are scaled
	// down keeping their aspect ratio. 0 means no cap.
	MaxWidth  int `yaml:"max_width"`
	MaxHeight int `yaml:"max_height"`
	// MaxFPS caps the encoded frame rate; 0 means no cap.
	MaxFPS float64 `yaml:"max_fps"`
	// SaturatedMaxFPS caps the encoded frame rate (WebRTC and MJPEG) while
	// the pipeline reports its detection path saturated on a busy CPU (see
	// Sink.SetSaturation): the preview gives the detector its CPU back, and
	// the skipped frames count as "detector_busy" drops. 0 never lowers the
	// rate.
	SaturatedMaxFPS float64 `yaml:"saturated_max_fps"`
	// KeyframeInterval is the longest gap between key frames, in frames.
	KeyframeInterval int `yaml:"keyframe_interval"`
	// VP8Speed is libvpx's real-time speed (VP8E_SET_CPUUSED, -16..16):
	// higher is cheaper and blurrier. 8 keeps 768x576 at a few ms per frame.
	VP8Speed int `yaml:"vp8_speed"`
	// EncoderThreads is how many threads the encoder may use (1..8).
	EncoderThreads int `yaml:"encoder_threads"`
	// GStreamerEncoder, when set, encodes with this GStreamer pipeline
	// segment (raw I420 in, Codec out) through OpenCV instead of libx264 or
	// libvpx: how a hardware encoder is reached, e.g. on Jetson
	// "nvvidconv ! video/x-raw(memory:NVMM),format=I420 ! nvv4l2h264enc
	// insert-sps-pps=true iframeinterval=30 idrinterval=30 bitrate=2000000".
	// Set its key-frame interval short: a new viewer waits for a key frame.
	GStreamerEncoder string `yaml:"gstreamer_encoder"`
	// MJPEGQuality is the JPEG quality (1-100) of the MJPEG fallback.
	MJPEGQuality int `yaml:"mjpeg_quality"`
	// Review, when set, adds the review page (/review) and its API: the
	// latest events with snapshots and clips (see ReviewConfig). The sink
	// then takes events losslessly, like an event sink.
	Review *ReviewConfig `yaml:"review"`
	// ICE lists STUN/TURN servers. None by default: host candidates only,
	// which is what loopback and LAN viewers need.
	ICE ICEConfig `yaml:"ice"`
}

// ICEConfig lists ICE servers handed to every viewer's peer connection.
type ICEConfig struct {
	// Servers are STUN or TURN servers.
	Servers []ICEServer `yaml:"servers"`
}

// ICEServer is one STUN or TURN server.
type ICEServer struct {
	// URLs are stun:host:port or turn:host:port?transport=udp URLs.
	URLs []string `yaml:"urls"`
	// Username and Credential authenticate to a TURN server.
	Username   string `yaml:"username"`
	Credential string `yaml:"credential"`
}

// Defaults returns the default configuration: loopback only, H.264 (one
// encoder thread) at 1.5 Mb/s, at most 1280x720 and 30 fps (5 while the
// detector is saturated), a key frame at least every 2 s.
func Defaults() Config {
	return Config{
		Listen:           "127.0.0.1:8080",
		Codec:            CodecH264,
		Bitrate:          1_500_000,
		MaxWidth:         1280,
		MaxHeight:        720,
		MaxFPS:           30,
		SaturatedMaxFPS:  5,
		KeyframeInterval: 60,
		VP8Speed:         8,
		EncoderThreads:   1,
		MJPEGQuality:     75,
	}
}

// Validate reports every problem with c at once, naming each field by its
// YAML key.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, a ...any) { errs = append(errs, stages.Errorf(path, format, a...)) }
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen", "%q is not host:port (e.g. 127.0.0.1:8080): %v", c.Listen, err)
		}
	}
	for i, o := range c.CORSOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			bad(fmt.Sprintf("cors_origins[%d]", i), "%q is not an origin: use scheme://host[:port], e.g. https://dashboard.example:8443, or \"*\"", o)
		}
	}
	switch c.Codec {
	case CodecVP8, CodecH264:
	default:
		bad("codec", "%q is not supported: use h264 or vp8", c.Codec)
	}
	if c.Bitrate < 50_000 || c.Bitrate > 50_000_000 {
		bad("bitrate", "%d is out of range: use 50000 to 50000000 bits per second", c.Bitrate)
	}
	if c.MaxWidth < 0 || c.MaxWidth == 1 || c.MaxWidth > 8192 {
		bad("max_width", "%d is out of range: use 0 (no cap) or 2 to 8192", c.MaxWidth)
	}
	if c.MaxHeight < 0 || c.MaxHeight == 1 || c.MaxHeight > 8192 {
		bad("max_height", "%d is out of range: use 0 (no cap) or 2 to 8192", c.MaxHeight)
	}
	if c.MaxFPS < 0 || c.MaxFPS > 240 {
		bad("max_fps", "%g is out of range: use 0 (no cap) to 240", c.MaxFPS)
	}
	if c.SaturatedMaxFPS < 0 || c.SaturatedMaxFPS > 240 {
		bad("saturated_max_fps", "%g is out of range: use 0 (never lower the rate) to 240", c.SaturatedMaxFPS)
	}
	if c.KeyframeInterval < 1 || c.KeyframeInterval > 1000 {
		bad("keyframe_interval", "%d is out of range: use 1 to 1000 frames", c.KeyframeInterval)
	}
	if c.VP8Speed < -16 || c.VP8Speed > 16 {
		bad("vp8_speed", "%d is out of range: use -16 to 16 (higher is faster)", c.VP8Speed)
	}
	if c.EncoderThreads < 1 || c.EncoderThreads > 8 {
		bad("encoder_threads", "%d is out of range: use 1 to 8", c.EncoderThreads)
	}
	if strings.ContainsAny(c.GStreamerEncoder, "\"'") || strings.Contains(c.GStreamerEncoder, "appsrc") || strings.Contains(c.GStreamerEncoder, "sink") {
		bad("gstreamer_encoder", "%q must be only the encoder part (no quotes, appsrc or sink): the sink adds appsrc, payloader and udpsink", c.GStreamerEncoder)
	}
	if c.MJPEGQuality < 1 || c.MJPEGQuality > 100 {
		bad("mjpeg_quality", "%d is out of range: use 1 to 100", c.MJPEGQuality)
	}
	for i, s := range c.ICE.Servers {
		if len(s.URLs) == 0 {
			bad(fmt.Sprintf("ice.servers[%d].urls", i), "is empty: give stun:host:port or turn:host:port")
		}
		for j, u := range s.URLs {
			p, err := url.Parse(u)
			if err != nil || (p.Scheme != "stun" && p.Scheme != "stuns" && p.Scheme != "turn" && p.Scheme != "turns") {
				bad(fmt.Sprintf("ice.servers[%d].urls[%d]", i, j), "%q is not a stun:, stuns:, turn: or turns: URL", u)
			}
			if err == nil && strings.HasPrefix(p.Scheme, "turn") && (s.Username == "" || s.Credential == "") {
				bad(fmt.Sprintf("ice.servers[%d]", i), "is a TURN server and needs username and credential")
			}
		}
	}
	if c.Review != nil {
		errs = append(errs, c.Review.validate()...)
	}
	return errors.Join(errs...)
}

// isLoopback reports whether listen binds only loopback addresses.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
