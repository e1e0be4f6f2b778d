package preview

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// Drop reasons counted per stream (the page and /api/stats show them).
const (
	// dropEncoderBusy: a newer frame replaced this one before the encoder
	// took it (the encoder is slower than the pipeline).
	dropEncoderBusy = "encoder_busy"
	// dropFPSCap: skipped to honour max_fps.
	dropFPSCap = "fps_cap"
	// dropViewerSlow: a viewer's metadata channel was too far behind, so this
	// frame's metadata was not queued for that viewer.
	dropViewerSlow = "viewer_slow"
	// dropEncodeError: the encoder failed on this frame.
	dropEncodeError = "encode_error"
	// dropDetectorBusy: skipped to honour saturated_max_fps while the
	// detection path was saturated.
	dropDetectorBusy = "detector_busy"
	// dropMJPEGBusy: a newer frame replaced this one before the MJPEG encoder took it.
	dropMJPEGBusy = "mjpeg_busy"
)

const (
	rtpMTU         = 1200
	videoClockRate = 90000
	// maxMetaBuffered caps what one viewer's DataChannel may hold unsent;
	// beyond it that viewer's metadata is dropped, never the pipeline's.
	maxMetaBuffered = 256 << 10
)

// stream is the per-stream state: the latest-frame slot the pipeline writes
// into, the encode loop that drains it, the shared video track and viewers.
type stream struct {
	id  string
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	latest  *stages.Frame // holds one reference while in the slot
	gen     uint64        // bumped by every put
	changed chan struct{} // closed and replaced by every put
	viewers map[*viewer]struct{}
	overlay overlayMsg
	width   int // last frame size, for /api/streams
	height  int

	track     *webrtc.TrackLocalStaticRTP
	payloader rtp.Payloader
	forceKey  atomic.Bool
	nViewers  atomic.Int32
	nMJPEG    atomic.Int32

	// saturated reports whether the pipeline's detection path is saturated
	// (Sink.SetSaturation); it never blocks.
	saturated func() bool

	stats streamStats
}

// streamStats are counters read by /api/stats while the loops write them.
type streamStats struct {
	written     atomic.Uint64
	encoded     atomic.Uint64
	encodeNanos atomic.Int64
	bytes       atomic.Uint64
	toSinkNanos atomic.Int64 // capture -> Write, summed over written frames
	mu          sync.Mutex
	drops       map[string]uint64
}

func (s *streamStats) drop(reason string, n uint64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.drops[reason] += n
	s.mu.Unlock()
}

// pacer returns a frame pacer for one encode loop of this stream.
func (st *stream) pacer() *pacer {
	return &pacer{maxFPS: st.cfg.MaxFPS, satFPS: st.cfg.SaturatedMaxFPS, saturated: st.saturated}
}

func newStream(id string, cfg Config, log *slog.Logger, saturated func() bool) (*stream, error) {
	mime, pl := webrtc.MimeTypeVP8, rtp.Payloader(&codecs.VP8Payloader{})
	if cfg.Codec == CodecH264 {
		mime, pl = webrtc.MimeTypeH264, &codecs.H264Payloader{}
	}
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime, ClockRate: videoClockRate}, "video", "osprey-"+id)
	if err != nil {
		return nil, fmt.Errorf("preview: stream %q: new track: %w", id, err)
	}
	st := &stream{
		id: id, cfg: cfg, log: log,
		changed:   make(chan struct{}),
		viewers:   map[*viewer]struct{}{},
		track:     tr,
		payloader: pl,
		saturated: saturated,
	}
	st.stats.drops = map[string]uint64{}
	return st, nil
}

// put makes f the latest frame. It takes over one reference of f.
func (st *stream) put(f *stages.Frame) {
	st.mu.Lock()
	old := st.latest
	st.latest = f
	st.gen++
	st.width, st.height = f.Width, f.Height
	close(st.changed)
	st.changed = make(chan struct{})
	st.mu.Unlock()
	if old != nil {
		old.Release()
	}
}

// take returns the latest frame with a reference for the caller if it is
// newer than generation last, and the channel closed by the next put.
func (st *stream) take(last uint64) (*stages.Frame, uint64, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.latest == nil || st.gen == last {
		return nil, last, st.changed
	}
	st.latest.Retain()
	return st.latest, st.gen, st.changed
}

// next waits for a frame newer than generation last and returns it with a
// reference for the caller and its generation; nil once ctx is done.
func (st *stream) next(ctx context.Context, last uint64) (*stages.Frame, uint64) {
	for {
		f, g, ch := st.take(last)
		if f != nil {
			return f, g
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, last
		}
	}
}

// release drops the slot's frame (at Close).
func (st *stream) release() {
	st.mu.Lock()
	f := st.latest
	st.latest = nil
	st.mu.Unlock()
	if f != nil {
		f.Release()
	}
}

// encodeLoop encodes the newest frame whenever a viewer is watching, until
// ctx is done. Frames that arrive while it is busy replace each other in the
// slot, so a slow encoder costs the pipeline nothing.
func (st *stream) encodeLoop(ctx context.Context) {
	var (
		last   uint64
		enc    encoder
		conv   *picture.I420
		encW   int
		encH   int
		seqNo  = uint16(rand.Uint32())
		tsBase = rand.Uint32()
		t0     time.Time
	)
	defer func() {
		if enc != nil {
			_ = enc.Close()
		}
		if conv != nil {
			conv.Close()
		}
	}()
	pace := st.pacer()
	for {
		f, g := st.next(ctx, last)
		if f == nil {
			return
		}
		watching := st.nViewers.Load() > 0
		if watching && last != 0 && g-last > 1 {
			st.stats.drop(dropEncoderBusy, g-last-1)
		}
		last = g
		if !watching {
			f.Release()
			continue
		}
		if ok, reason := pace.take(f.Captured); !ok {
			st.stats.drop(reason, 1)
			f.Release()
			continue
		}
		if t0.IsZero() {
			t0 = f.Captured
		}
		var err error
		w, h := fitSize(f.Width, f.Height, st.cfg.MaxWidth, st.cfg.MaxHeight)
		if enc == nil || w != encW || h != encH {
			if enc != nil {
				_ = enc.Close()
				conv.Close()
			}
			enc, err = newEncoder(st.cfg, w, h)
			if err != nil {
				st.log.Warn("preview: cannot open encoder", "stream", st.id, "err", err)
				f.Release()
				enc = nil
				st.stats.drop(dropEncodeError, 1)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				continue
			}
			conv, encW, encH = picture.NewI420(w, h), w, h
		}
		if st.forceKey.Swap(false) {
			enc.ForceKeyFrame()
		}
		start := time.Now()
		var au []byte
		mat, err := picture.Mat(f)
		if err == nil {
			switch e := enc.(type) {
			case matEncoder:
				au, err = e.EncodeMat(mat)
			case yuvEncoder:
				var img *image.YCbCr
				if img, err = conv.Convert(mat); err == nil {
					au, err = e.Encode(img)
				}
			}
		}
		if err != nil {
			st.stats.drop(dropEncodeError, 1)
			st.log.Warn("preview: encode failed", "stream", st.id, "seq", f.Seq, "err", err)
			f.Release()
			continue
		}
		st.stats.encodeNanos.Add(int64(time.Since(start)))
		st.stats.encoded.Add(1)
		st.stats.bytes.Add(uint64(len(au)))
		// The RTP timestamp follows the capture clock, so the page can line
		// metadata up with the decoded frame exactly.
		ts := tsBase + uint32(f.Captured.Sub(t0).Seconds()*videoClockRate)
		st.sendMeta(f, ts, encW, encH)
		f.Release()
		if len(au) == 0 {
			continue // the encoder produced nothing for this frame
		}
		payloads := st.payloader.Payload(rtpMTU, au)
		for i, p := range payloads {
			pkt := rtp.Packet{
				Header: rtp.Header{
					Version:        2,
					Marker:         i == len(payloads)-1,
					SequenceNumber: seqNo,
					Timestamp:      ts,
				},
				Payload: p,
			}
			seqNo++
			// Errors only mean no viewer is bound yet or one just left.
			_ = st.track.WriteRTP(&pkt)
		}
	}
}

// sendMeta queues the frame's metadata on every open viewer channel that is
// not too far behind.
func (st *stream) sendMeta(f *stages.Frame, ts uint32, encW, encH int) {
	msg, err := json.Marshal(newFrameMsg(f, ts, encW, encH))
	if err != nil {
		st.log.Warn("preview: metadata encode failed", "stream", st.id, "err", err)
		return
	}
	st.mu.Lock()
	vs := make([]*viewer, 0, len(st.viewers))
	for v := range st.viewers {
		vs = append(vs, v)
	}
	st.mu.Unlock()
	for _, v := range vs {
		if !v.sendMeta(msg) {
			st.stats.drop(dropViewerSlow, 1)
		}
	}
}

func (st *stream) addViewer(v *viewer) {
	st.mu.Lock()
	st.viewers[v] = struct{}{}
	st.mu.Unlock()
	st.nViewers.Add(1)
	st.forceKey.Store(true)
}

func (st *stream) removeViewer(v *viewer) {
	st.mu.Lock()
	_, ok := st.viewers[v]
	delete(st.viewers, v)
	st.mu.Unlock()
	if ok {
		st.nViewers.Add(-1)
	}
}

func (st *stream) overlays() overlayMsg {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.overlay
}

// streamStatsJSON is one stream's entry in /api/stats.
type streamStatsJSON struct {
	Viewers       int               `json:"viewers"`
	MJPEGClients  int               `json:"mjpeg_clients"`
	Written       uint64            `json:"frames_in"`
	Encoded       uint64            `json:"frames_encoded"`
	EncodeMeanMs  float64           `json:"encode_mean_ms"`
	ToSinkMeanMs  float64           `json:"capture_to_sink_mean_ms"`
	BitrateApprox uint64            `json:"bytes_encoded"`
	Drops         map[string]uint64 `json:"drops"`
}

func (st *stream) snapshot() streamStatsJSON {
	s := &st.stats
	out := streamStatsJSON{
		Viewers:       int(st.nViewers.Load()),
		MJPEGClients:  int(st.nMJPEG.Load()),
		Written:       s.written.Load(),
		Encoded:       s.encoded.Load(),
		BitrateApprox: s.bytes.Load(),
		Drops:         map[string]uint64{},
	}
	if out.Encoded > 0 {
		out.EncodeMeanMs = float64(s.encodeNanos.Load()) / float64(out.Encoded) / 1e6
	}
	if out.Written > 0 {
		out.ToSinkMeanMs = float64(s.toSinkNanos.Load()) / float64(out.Written) / 1e6
	}
	s.mu.Lock()
	for k, v := range s.drops {
		out.Drops[k] = v
	}
	s.mu.Unlock()
	return out
}
