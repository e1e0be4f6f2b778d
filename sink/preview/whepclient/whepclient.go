// Package whepclient is a WHEP viewer for Osprey's preview sink: a pion
// peer that receives a stream's video track and its "meta" DataChannel the
// way the browser page does, and counts what arrives. `pipeline watch` uses
// it to load-test a running preview; the tests use it as a scriptable viewer.
package whepclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// MetaLabel is the DataChannel label the preview sink sends metadata on.
const MetaLabel = "meta"

// Options configures a viewer. The zero value is a plain viewer.
type Options struct {
	// Token is sent as "Authorization: Bearer <token>" when set.
	Token string
	// OnRTP, when set, is called with every video RTP packet (from the
	// track's reading goroutine; p is valid only during the call).
	OnRTP func(p *rtp.Packet)
	// OnMessage, when set, is called with every DataChannel message (from
	// pion's goroutine; blocking in it stops this viewer reading, which is
	// how a test plays a viewer that never reads).
	OnMessage func(data []byte)
	// Client makes the WHEP requests; nil means http.DefaultClient.
	Client *http.Client
}

// Stats is what one viewer has received so far.
type Stats struct {
	// Packets and Bytes count video RTP packets and their payload bytes.
	Packets int `json:"packets"`
	Bytes   int `json:"bytes"`
	// Frames counts video frames: RTP packets with the marker bit (the last
	// packet of each frame).
	Frames int `json:"frames"`
	// Meta counts "frame" metadata messages; Overlays says whether the
	// zone/line overlay message arrived.
	Meta     int  `json:"meta"`
	Overlays bool `json:"overlays"`
}

// Viewer is one connected WHEP viewer.
type Viewer struct {
	// PC is the viewer's peer connection.
	PC *webrtc.PeerConnection
	// Location is the WHEP session URL the server returned (for DELETE).
	Location string

	client *http.Client
	token  string

	mu sync.Mutex
	st Stats
}

// Dial connects a viewer to stream on the preview server at base (for
// example "http://127.0.0.1:8080"). The offer carries every ICE candidate
// (no trickle), as the server expects. The viewer counts what arrives until
// Close or Vanish.
func Dial(ctx context.Context, base, stream string, opt Options) (*Viewer, error) {
	client := opt.Client
	if client == nil {
		client = http.DefaultClient
	}
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("whep: new peer connection: %w", err)
	}
	v := &Viewer{PC: pc, client: client, token: opt.Token}
	if err := v.setup(opt); err != nil {
		_ = pc.Close()
		return nil, err
	}
	if err := v.negotiate(ctx, base, stream); err != nil {
		_ = pc.Close()
		return nil, err
	}
	return v, nil
}

func (v *Viewer) setup(opt Options) error {
	if _, err := v.PC.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return fmt.Errorf("whep: add video transceiver: %w", err)
	}
	dc, err := v.PC.CreateDataChannel(MetaLabel, nil)
	if err != nil {
		return fmt.Errorf("whep: create data channel: %w", err)
	}
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if opt.OnMessage != nil {
			opt.OnMessage(m.Data)
		}
		var probe struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(m.Data, &probe) != nil {
			return
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		switch probe.Type {
		case "overlays":
			v.st.Overlays = true
		case "frame":
			v.st.Meta++
		}
	})
	v.PC.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if opt.OnRTP != nil {
				opt.OnRTP(p)
			}
			v.mu.Lock()
			v.st.Packets++
			v.st.Bytes += len(p.Payload)
			if p.Marker {
				v.st.Frames++
			}
			v.mu.Unlock()
		}
	})
	return nil
}

func (v *Viewer) negotiate(ctx context.Context, base, stream string) error {
	offer, err := v.PC.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("whep: create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(v.PC)
	if err := v.PC.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("whep: set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	endpoint := strings.TrimSuffix(base, "/") + "/whep/" + url.PathEscape(stream)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(v.PC.LocalDescription().SDP))
	if err != nil {
		return fmt.Errorf("whep: %s: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	v.authorize(req)
	res, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("whep: POST %s: %w (is the pipeline running with a preview sink?)", endpoint, err)
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("whep: POST %s: %s: %s", endpoint, res.Status, strings.TrimSpace(string(body)))
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/sdp" {
		return fmt.Errorf("whep: POST %s: answer has Content-Type %q, want application/sdp", endpoint, ct)
	}
	loc, err := req.URL.Parse(res.Header.Get("Location"))
	if err != nil || res.Header.Get("Location") == "" {
		return fmt.Errorf("whep: POST %s: bad or missing Location %q", endpoint, res.Header.Get("Location"))
	}
	v.Location = loc.String()
	if err := v.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return fmt.Errorf("whep: POST %s: the answer does not apply: %w", endpoint, err)
	}
	return nil
}

func (v *Viewer) authorize(req *http.Request) {
	if v.token != "" {
		req.Header.Set("Authorization", "Bearer "+v.token)
	}
}

// Stats returns what the viewer has received so far.
func (v *Viewer) Stats() Stats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.st
}

// Close ends the session politely (WHEP DELETE, then closes the peer).
func (v *Viewer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if req, err := http.NewRequestWithContext(ctx, http.MethodDelete, v.Location, nil); err == nil {
		v.authorize(req)
		if res, err := v.client.Do(req); err != nil {
			errs = append(errs, fmt.Errorf("whep: DELETE %s: %w", v.Location, err))
		} else {
			res.Body.Close()
			if res.StatusCode/100 != 2 {
				errs = append(errs, fmt.Errorf("whep: DELETE %s: %s", v.Location, res.Status))
			}
		}
	}
	errs = append(errs, v.PC.Close())
	return errors.Join(errs...)
}

// Vanish closes the peer without telling the server, like a browser tab
// that crashed: the server must notice on its own.
func (v *Viewer) Vanish() error { return v.PC.Close() }
