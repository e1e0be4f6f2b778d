package preview

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// realOffer returns a browser-like recvonly video offer made by pion.
func realOffer(tb testing.TB) string {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		tb.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return o.SDP
}

// FuzzWHEPOffer posts mutated SDP offers to the WHEP endpoint: the handler
// must never panic and must answer 201 (then the viewer is deleted again) or
// a 4xx naming the problem, never a 5xx.
func FuzzWHEPOffer(f *testing.F) {
	f.Add([]byte(realOffer(f)))
	f.Add([]byte("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"))
	cfg := Defaults()
	cfg.Listen = ""
	s, err := New(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		f.Fatal(err)
	}
	defer s.Close(context.Background())
	// One frame makes stream "cam" exist.
	fr := stages.NewFrame("cam", 1, picture.New(gocv.NewMatWithSize(120, 160, gocv.MatTypeCV8UC3)))
	if err := s.Write(context.Background(), fr); err != nil {
		f.Fatal(err)
	}
	fr.Release()
	h := s.Handler()
	f.Fuzz(func(t *testing.T, offer []byte) {
		req := httptest.NewRequest(http.MethodPost, "/whep/cam", strings.NewReader(string(offer)))
		req.Header.Set("Content-Type", "application/sdp")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusCreated:
			loc := rec.Header().Get("Location")
			del := httptest.NewRequest(http.MethodDelete, "/whep/"+loc, nil)
			h.ServeHTTP(httptest.NewRecorder(), del)
		case rec.Code >= 500:
			t.Fatalf("offer %q: %d %s", offer, rec.Code, rec.Body.String())
		case !strings.HasPrefix(rec.Body.String(), "preview: "):
			t.Fatalf("offer %q: %d without a preview error: %q", offer, rec.Code, rec.Body.String())
		}
	})
}
