package capture

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"gocv.io/x/gocv"
)

// errEOF is a backend's end of a finite stream (or, for files, a frame that
// cannot be decoded: OpenCV does not tell the two apart).
var errEOF = errors.New("capture: end of stream")

// backend is one open connection to a stream. Its methods are called from a
// single goroutine (the connection's), and may block in cgo.
type backend interface {
	// read decodes the next frame into m (a fresh Mat the caller owns).
	read(m *gocv.Mat) error
	// fps is the stream's nominal frame rate, 0 when unknown.
	fps() float64
	close()
}

// openBackend opens ep; cfg supplies the test pattern size and v4l2 hints.
func openBackend(ep endpoint, cfg Config) (backend, error) {
	switch ep.kind {
	case kindTest:
		return newPattern(ep, cfg), nil
	case kindFile:
		return openCV(ep.target, -1, gocv.VideoCaptureFFmpeg, nil)
	case kindRTSP:
		release := ffmpegOptions.acquire(rtspOptions(cfg.TCP))
		defer release()
		return openCV(ep.target, -1, gocv.VideoCaptureFFmpeg, nil)
	case kindV4L2:
		return openCV(ep.target, ep.device, gocv.VideoCaptureV4L2, func(vc *gocv.VideoCapture) {
			if cfg.Width > 0 && cfg.Height > 0 {
				vc.Set(gocv.VideoCaptureFrameWidth, float64(cfg.Width))
				vc.Set(gocv.VideoCaptureFrameHeight, float64(cfg.Height))
			}
			if cfg.FPS > 0 {
				vc.Set(gocv.VideoCaptureFPS, cfg.FPS)
			}
			// Keep latency low: do not queue old frames in the driver.
			vc.Set(gocv.VideoCaptureBufferSize, 1)
		})
	case kindGst:
		return openCV(ep.target, -1, gocv.VideoCaptureGstreamer, nil)
	}
	return nil, fmt.Errorf("capture: no backend for %s", ep.kind)
}

// cvBackend reads through an OpenCV VideoCapture.
type cvBackend struct {
	vc  *gocv.VideoCapture
	fr  float64
	pos int // frames read, for damaged-file diagnostics
	n   int // frame count reported by the container, 0 if unknown
}

func openCV(target string, device int, api gocv.VideoCaptureAPI, setup func(*gocv.VideoCapture)) (backend, error) {
	var (
		vc  *gocv.VideoCapture
		err error
	)
	if device >= 0 {
		vc, err = gocv.VideoCaptureDeviceWithAPI(device, api)
	} else {
		vc, err = gocv.VideoCaptureFileWithAPI(target, api)
	}
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			_ = vc.Close()
		}
		return nil, errors.New("opencv could not open it")
	}
	if setup != nil {
		setup(vc)
	}
	b := &cvBackend{vc: vc, fr: vc.Get(gocv.VideoCaptureFPS), n: int(vc.Get(gocv.VideoCaptureFrameCount))}
	if b.fr < 0 || b.fr > 1000 {
		b.fr = 0
	}
	return b, nil
}

func (b *cvBackend) read(m *gocv.Mat) error {
	if !b.vc.Read(m) || m.Empty() {
		return errEOF
	}
	b.pos++
	return nil
}

func (b *cvBackend) fps() float64 { return b.fr }

func (b *cvBackend) close() { _ = b.vc.Close() }

// ffmpegEnv is the variable OpenCV's FFmpeg backend reads at every open for
// extra avformat options ("key;value|key;value"). gocv v0.31 has no
// per-open parameters, so the RTSP transport goes through it.
const ffmpegEnv = "OPENCV_FFMPEG_CAPTURE_OPTIONS"

// userFFmpegOptions is the variable's value when the process started; our
// options are appended to it so a user's own settings survive.
var userFFmpegOptions, userFFmpegOptionsSet = os.LookupEnv(ffmpegEnv)

// rtspAnalyze caps how long FFmpeg probes a new RTSP stream (microseconds).
// Its 5 s default made every (re)connect to the test server take 2.8 s; camera
// H.264 carries its parameters in the SDP, so 0.5 s is plenty (0.6 s opens).
const rtspAnalyze = "analyzeduration;500000"

// rtspOptions returns the FFmpeg option string for an RTSP open. OpenCV sets
// rtsp_transport=tcp itself only when the variable is unset, so it is always
// set here, to make tcp: false mean FFmpeg's own default (UDP, TCP fallback).
// The user's own value comes last so that its keys win.
func rtspOptions(tcp bool) string {
	parts := []string{rtspAnalyze}
	if tcp {
		parts = append(parts, "rtsp_transport;tcp")
	}
	if userFFmpegOptionsSet && userFFmpegOptions != "" {
		parts = append(parts, userFFmpegOptions)
	}
	return strings.Join(parts, "|")
}

// envGate lets opens that need the same value of the process-wide FFmpeg
// options variable run together, and makes an open that needs a different
// value wait until those finish. Streams with equal settings never wait on
// each other, so one hung open cannot stall its neighbours.
type envGate struct {
	mu    sync.Mutex
	cond  *sync.Cond
	value string
	users int
}

var ffmpegOptions = newEnvGate()

func newEnvGate() *envGate {
	g := &envGate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// acquire sets the variable to value (waiting for opens using another value)
// and returns the release func.
func (g *envGate) acquire(value string) (release func()) {
	g.mu.Lock()
	for g.users > 0 && g.value != value {
		g.cond.Wait()
	}
	if g.users == 0 {
		g.value = value
		_ = os.Setenv(ffmpegEnv, value)
	}
	g.users++
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.users--
		if g.users == 0 {
			g.cond.Broadcast()
		}
		g.mu.Unlock()
	}
}
