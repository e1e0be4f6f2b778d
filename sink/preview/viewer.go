package preview

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// metaLabel is the DataChannel label the viewer opens for metadata.
const metaLabel = "meta"

// viewer is one WebRTC peer watching one stream.
type viewer struct {
	id   string
	s    *Sink
	st   *stream
	pc   *webrtc.PeerConnection
	dc   atomic.Pointer[webrtc.DataChannel]
	once sync.Once
}

// sendMeta queues msg on the viewer's metadata channel. It returns false when
// the viewer is too far behind and msg was dropped for it.
func (v *viewer) sendMeta(msg []byte) bool {
	dc := v.dc.Load()
	if dc == nil {
		return true // no channel (yet): nothing to deliver, nothing dropped
	}
	if dc.BufferedAmount() > maxMetaBuffered {
		return false
	}
	return dc.SendText(string(msg)) == nil
}

// close ends the viewer's session; safe to call from any goroutine, twice.
func (v *viewer) close() {
	v.once.Do(func() {
		v.st.removeViewer(v)
		v.s.mu.Lock()
		delete(v.s.viewers, v.id)
		v.s.mu.Unlock()
		_ = v.pc.Close()
	})
}

// errBadOffer marks offers the client got wrong (HTTP 400).
type errBadOffer struct{ err error }

func (e errBadOffer) Error() string { return e.err.Error() }
func (e errBadOffer) Unwrap() error { return e.err }

// answer creates a viewer of st from an SDP offer and returns the viewer and
// the complete SDP answer (all ICE candidates gathered, no trickle).
func (s *Sink) answer(ctx context.Context, st *stream, offer string) (*viewer, string, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{ICEServers: s.iceServers()})
	if err != nil {
		return nil, "", fmt.Errorf("preview: new peer connection: %w", err)
	}
	fail := func(err error) (*viewer, string, error) {
		_ = pc.Close()
		return nil, "", err
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	v := &viewer{id: hex.EncodeToString(idb[:]), s: s, st: st, pc: pc}

	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(errBadOffer{fmt.Errorf("preview: bad SDP offer for stream %q: %w", st.id, err)})
	}
	sender, err := pc.AddTrack(st.track)
	if err != nil {
		return fail(errBadOffer{fmt.Errorf("preview: offer for stream %q cannot receive %s video: %w", st.id, s.cfg.Codec, err)})
	}
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != metaLabel {
			return
		}
		dc.OnOpen(func() {
			if b, err := json.Marshal(st.overlays()); err == nil {
				_ = dc.SendText(string(b))
			}
			v.dc.Store(dc)
		})
	})
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		switch state {
		case webrtc.PeerConnectionStateConnected:
			st.forceKey.Store(true) // the first key frame may have gone out before DTLS was up
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateDisconnected:
			// pion must not be closed from inside its own callback.
			go v.close()
		}
	})
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(errBadOffer{fmt.Errorf("preview: cannot answer the offer for stream %q: %w", st.id, err)})
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("preview: set local description: %w", err))
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(fmt.Errorf("preview: gathering ICE candidates: %w", ctx.Err()))
	case <-time.After(5 * time.Second):
		return fail(fmt.Errorf("preview: gathering ICE candidates took over 5s"))
	}

	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return fail(ErrClosed)
	}
	s.viewers[v.id] = v
	// Read RTCP so the interceptors work, and turn PLI/FIR into key frames.
	s.wg.Go(func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				switch p.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					st.forceKey.Store(true)
				}
			}
		}
	})
	s.mu.Unlock()
	st.addViewer(v)
	return v, pc.LocalDescription().SDP, nil
}

func (s *Sink) iceServers() []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(s.cfg.ICE.Servers))
	for _, srv := range s.cfg.ICE.Servers {
		out = append(out, webrtc.ICEServer{URLs: srv.URLs, Username: srv.Username, Credential: srv.Credential})
	}
	return out
}
