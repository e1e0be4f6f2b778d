// Package preview is Osprey's live preview sink: each stream's frames are
// encoded once (H.264 or VP8) and sent over WebRTC to any number of browser
// viewers, with per-frame metadata (boxes, track IDs, zones, lines) on a
// DataChannel so the page draws the overlay in sync with the video. An MJPEG
// endpoint with boxes drawn server-side serves clients without WebRTC.
//
// The pipeline never waits for the preview: Write puts the frame in a
// one-frame "latest" slot per stream and returns; the encoder takes the
// newest frame when it is free, and older ones are dropped and counted.
package preview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// ErrClosed is returned by Write and Connect after Close.
var ErrClosed = errors.New("preview: sink closed")

// Sink is the preview sink. It implements stages.Sink. Its methods are safe
// for concurrent use.
type Sink struct {
	cfg Config
	log *slog.Logger
	api *webrtc.API

	ctx    context.Context // cancelled by Close; parents every goroutine
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.RWMutex
	streams map[string]*stream
	viewers map[string]*viewer

	stats atomic.Pointer[func() stages.LiveStats]
	// fleet reads the fleet's status for /api/fleet (SetFleet); nil: not
	// a fleet node.
	fleet atomic.Pointer[fleetFunc]
	// overlays provides each stream's zones and lines (RefreshOverlays).
	overlays  func(stream string) stages.Overlay
	saturated atomic.Pointer[func() bool]
	// background runs an encoding loop on a lowered thread
	// (stages.Resources.Background); nil runs it as it is.
	background func(fn func())
	handler    http.Handler
	review     *reviewStore // with review set

	srvMu  sync.Mutex
	srv    *http.Server
	addr   net.Addr
	closed atomic.Bool
}

var _ stages.Sink = (*Sink)(nil)

// New validates cfg and builds the sink. Zero-valued fields of cfg are NOT
// filled in: start from Defaults(). The HTTP server (when cfg.Listen is set)
// starts in Connect.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	api, err := newAPI(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sink{
		cfg: cfg, log: log, api: api, ctx: ctx, cancel: cancel,
		streams: map[string]*stream{},
		viewers: map[string]*viewer{},
	}
	if cfg.Review != nil {
		s.review = newReviewStore(*cfg.Review)
	}
	s.handler = s.routes()
	return s, nil
}

// newAPI builds the pion API shared by every viewer: one codec, the NACK
// and RTCP report interceptors, and host-only ICE unless STUN/TURN is set.
func newAPI(cfg Config) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	codec := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: videoClockRate},
		PayloadType:        96,
	}
	if cfg.Codec == CodecH264 {
		codec = webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH264, ClockRate: videoClockRate,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
			},
			PayloadType: 102,
		}
	}
	codec.RTCPFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	if err := me.RegisterCodec(codec, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("preview: register %s codec: %w", cfg.Codec, err)
	}
	// Only what a send-only, fixed-bitrate preview uses: NACK (retransmit
	// lost packets from a short history) and RTCP sender/receiver reports.
	// pion's defaults add a stats interceptor (a hook on every packet to
	// every viewer) and TWCC feedback, which nothing here reads.
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(me, ir); err != nil {
		return nil, fmt.Errorf("preview: register NACK interceptors: %w", err)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, fmt.Errorf("preview: register RTCP report interceptors: %w", err)
	}
	se := webrtc.SettingEngine{}
	// Viewers on the same host reach us over loopback; LAN viewers over host
	// candidates. No mDNS: browsers' .local candidates are not needed because
	// their connectivity checks reveal their address (peer-reflexive).
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	// Notice a vanished viewer within seconds and free its resources.
	se.SetICETimeouts(2*time.Second, 4*time.Second, 500*time.Millisecond)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// Connect starts the HTTP server when Config.Listen is set. Calling it again
// while the server runs does nothing.
func (s *Sink) Connect(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.cfg.Listen == "" {
		return nil
	}
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		return nil
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("preview: listen on %s: %w (change sinks.preview.listen or free the port)", s.cfg.Listen, err)
	}
	if !isLoopback(s.cfg.Listen) && s.cfg.Token == "" {
		s.log.Warn("preview: listening beyond loopback without a token: anyone on the network can watch", "listen", ln.Addr().String())
	}
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return s.ctx }}
	s.addr = ln.Addr()
	// One start-up line: the user needs the address to open the page.
	s.log.Info("preview: serving the live page", "url", "http://"+ln.Addr().String()+"/")
	srv := s.srv
	s.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("preview: http server stopped", "err", err)
		}
	})
	return nil
}

// Addr returns the address the HTTP server listens on (useful with port 0),
// or nil before Connect or without Listen.
func (s *Sink) Addr() net.Addr {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.addr
}

// Handler returns the sink's HTTP handler (page, /whep/, /api/, /mjpeg/), so
// it can be mounted on another server. It enforces the token like the sink's
// own server does.
func (s *Sink) Handler() http.Handler { return s.handler }

// Write hands f to the preview. It never blocks on encoding or viewers: it
// retains f, replaces the stream's previous unencoded frame (which is then
// dropped) and returns.
func (s *Sink) Write(_ context.Context, f *stages.Frame) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.review != nil {
		s.review.observe(f)
		if _, err := picture.Mat(f); err != nil {
			return nil // events without a picture (source up/down, clip.ready)
		}
	}
	st, err := s.stream(f.Stream)
	if err != nil {
		return err
	}
	st.stats.written.Add(1)
	if !f.Captured.IsZero() {
		st.stats.toSinkNanos.Add(int64(time.Since(f.Captured)))
	}
	f.Retain()
	st.put(f)
	return nil
}

// SetOverlays sets the zones and lines drawn over stream (normalised 0..1
// coordinates). Viewers get them when their metadata channel opens; the
// MJPEG fallback draws them on every picture. Call it before or while running.
func (s *Sink) SetOverlays(streamID string, zones []Zone, lines []Line) error {
	st, err := s.stream(streamID)
	if err != nil {
		return err
	}
	m := newOverlayMsg(zones, lines)
	st.mu.Lock()
	st.overlay = m
	st.mu.Unlock()
	return nil
}

// SetStatsProvider sets the function whose result /api/stats returns under
// "pipeline" (called once per request, from HTTP goroutines).
func (s *Sink) SetStatsProvider(fn func() stages.LiveStats) {
	if fn == nil {
		s.stats.Store(nil)
		return
	}
	s.stats.Store(&fn)
}

// SetSaturation sets the function that tells the sink the pipeline's
// detection path is saturated and needs the CPU (called by every encode loop
// for every frame, so it must be cheap and never block). While it returns
// true, encoders take at most saturated_max_fps. nil: never saturated.
func (s *Sink) SetSaturation(fn func() bool) {
	if fn == nil {
		s.saturated.Store(nil)
		return
	}
	s.saturated.Store(&fn)
}

func (s *Sink) isSaturated() bool {
	fn := s.saturated.Load()
	return fn != nil && (*fn)()
}

// PipelineStats is what the page charts: FPS per stream, drops by
// stage/reason, recent mean latency per stage.
type PipelineStats = stages.LiveStats

// stream returns the state for id, creating it (and its encode loop) on first use.
func (s *Sink) stream(id string) (*stream, error) {
	s.mu.RLock()
	st := s.streams[id]
	s.mu.RUnlock()
	if st != nil {
		return st, nil
	}
	if id == "" {
		return nil, errors.New("preview: frame has no stream ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[id]; st != nil {
		return st, nil
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	st, err := newStream(id, s.cfg, s.log, s.isSaturated)
	if err != nil {
		return nil, err
	}
	st.overlay = newOverlayMsg(nil, nil)
	s.streams[id] = st
	s.wg.Go(func() { s.inBackground(func() { st.encodeLoop(s.ctx) }) })
	return st, nil
}

// inBackground runs fn, an encoding loop, with the pipeline's background
// scheduling, so inference gets the CPU first. Call it as a goroutine's
// last call: the goroutine keeps the lowered thread.
func (s *Sink) inBackground(fn func()) {
	if s.background == nil {
		fn()
		return
	}
	s.background(fn)
}

func (s *Sink) lookup(id string) *stream {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.streams[id]
}

// Close disconnects every viewer, stops the HTTP server and the encoders,
// and releases the frames it held. It is safe to call twice.
func (s *Sink) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	s.srvMu.Lock()
	srv := s.srv
	s.srvMu.Unlock()
	s.cancel()
	var err error
	if srv != nil {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if e := srv.Shutdown(sctx); e != nil {
			_ = srv.Close()
		}
		cancel()
	}
	s.mu.Lock()
	vs := make([]*viewer, 0, len(s.viewers))
	for _, v := range s.viewers {
		vs = append(vs, v)
	}
	s.mu.Unlock()
	for _, v := range vs {
		v.close()
	}
	s.wg.Wait()
	s.mu.Lock()
	for _, st := range s.streams {
		st.release()
	}
	s.mu.Unlock()
	return err
}
