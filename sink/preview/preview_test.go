package preview

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/sink/preview/whepclient"
)

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testConfig() Config {
	c := Defaults()
	c.Listen = "127.0.0.1:0"
	return c
}

// startSink builds and connects a sink and closes it at cleanup.
func startSink(t *testing.T, cfg Config) (*Sink, string) {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, "http://" + s.Addr().String()
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		err  string
	}{
		{"defaults", func(*Config) {}, ""},
		{"vp8", func(c *Config) { c.Codec = CodecVP8 }, ""},
		{"codec", func(c *Config) { c.Codec = "av1" }, `codec: "av1" is not supported: use h264 or vp8`},
		{"listen", func(c *Config) { c.Listen = "8080" }, `listen: "8080" is not host:port (e.g. 127.0.0.1:8080): address 8080: missing port in address`},
		{"bitrate", func(c *Config) { c.Bitrate = 10 }, "bitrate: 10 is out of range: use 50000 to 50000000 bits per second"},
		{"max_width", func(c *Config) { c.MaxWidth = -1 }, "max_width: -1 is out of range: use 0 (no cap) or 2 to 8192"},
		{"gstreamer", func(c *Config) { c.GStreamerEncoder = "x264enc ! fakesink" }, `gstreamer_encoder: "x264enc ! fakesink" must be only the encoder part (no quotes, appsrc or sink): the sink adds appsrc, payloader and udpsink`},
		{"max_fps", func(c *Config) { c.MaxFPS = 1000 }, "max_fps: 1000 is out of range: use 0 (no cap) to 240"},
		{"saturated_max_fps", func(c *Config) { c.SaturatedMaxFPS = -1 }, "saturated_max_fps: -1 is out of range: use 0 (never lower the rate) to 240"},
		{"cors origins", func(c *Config) { c.CORSOrigins = []string{"*", "https://dash.example:8443", "http://10.0.0.5/"} }, ""},
		{"cors origin with a path", func(c *Config) { c.CORSOrigins = []string{"https://dash.example/app"} }, `cors_origins[0]: "https://dash.example/app" is not an origin: use scheme://host[:port], e.g. https://dashboard.example:8443, or "*"`},
		{"cors origin without scheme", func(c *Config) { c.CORSOrigins = []string{"dash.example"} }, `cors_origins[0]: "dash.example" is not an origin: use scheme://host[:port], e.g. https://dashboard.example:8443, or "*"`},
		{"stun url", func(c *Config) { c.ICE.Servers = []ICEServer{{URLs: []string{"http://x"}}} }, `ice.servers[0].urls[0]: "http://x" is not a stun:, stuns:, turn: or turns: URL`},
		{"turn creds", func(c *Config) { c.ICE.Servers = []ICEServer{{URLs: []string{"turn:10.0.0.1:3478"}}} }, "ice.servers[0]: is a TURN server and needs username and credential"},
		{"all at once", func(c *Config) { c.Codec = "x"; c.MJPEGQuality = 0 }, "codec: \"x\" is not supported: use h264 or vp8\nmjpeg_quality: 0 is out of range: use 1 to 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.edit(&c)
			err := c.Validate()
			if tt.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.err {
				t.Fatalf("error = %v, want %q", err, tt.err)
			}
			if _, err := New(c, nil); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestFitSize(t *testing.T) {
	for _, tt := range []struct{ w, h, mw, mh, ow, oh int }{
		{768, 576, 1280, 720, 768, 576},
		{1920, 1080, 1280, 720, 1280, 720},
		{768, 576, 640, 0, 640, 480},
		{1001, 701, 0, 0, 1000, 700},
		{768, 576, 0, 288, 384, 288},
	} {
		if w, h := fitSize(tt.w, tt.h, tt.mw, tt.mh); w != tt.ow || h != tt.oh {
			t.Errorf("fitSize(%d,%d,%d,%d) = %dx%d, want %dx%d", tt.w, tt.h, tt.mw, tt.mh, w, h, tt.ow, tt.oh)
		}
	}
}

// A page on an allowed origin may call WHEP and the API (preflight without
// the token, the real request still needs it); other origins get no CORS
// headers, so the browser keeps their scripts out.
func TestCORS(t *testing.T) {
	cfg := testConfig()
	cfg.Token = "s3cret"
	cfg.CORSOrigins = []string{"https://dash.example/"}
	_, base := startSink(t, cfg)
	do := func(method, path, origin string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	pre := do("OPTIONS", "/whep/cam", "https://dash.example", map[string]string{
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"})
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "https://dash.example" ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	ok := do("GET", "/api/streams", "https://dash.example", map[string]string{"Authorization": "Bearer s3cret"})
	if ok.StatusCode != http.StatusOK || ok.Header.Get("Access-Control-Allow-Origin") != "https://dash.example" || ok.Header.Get("Access-Control-Expose-Headers") != "Location" {
		t.Fatalf("allowed origin with token: %d %v", ok.StatusCode, ok.Header)
	}
	if res := do("GET", "/api/streams", "https://dash.example", nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("allowed origin without token: %d, want 401", res.StatusCode)
	}
	other := do("GET", "/api/streams", "https://evil.example", map[string]string{"Authorization": "Bearer s3cret"})
	if other.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin got CORS headers: %v", other.Header)
	}
	if res := do("OPTIONS", "/whep/cam", "https://evil.example", map[string]string{"Access-Control-Request-Method": "POST"}); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin's preflight got CORS headers: %v", res.Header)
	}
	// No trickle ICE: WHEP clients read 405 on PATCH as "not supported".
	if res := do("PATCH", "/whep/cam/abc", "", map[string]string{"Authorization": "Bearer s3cret", "Content-Type": "application/trickle-ice-sdpfrag"}); res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PATCH: %d, want 405", res.StatusCode)
	}
}

func TestTokenRequired(t *testing.T) {
	c := loadClip(t)
	matcheck.Leaks(t)
	cfg := testConfig()
	cfg.Token = "s3cret"
	s, base := startSink(t, cfg)
	f := c.frame("cam", 1)
	if err := s.Write(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	f.Release()
	req := func(method, path, auth string) int {
		r, _ := http.NewRequest(method, base+path, strings.NewReader("v=0\r\n"))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		r.Header.Set("Content-Type", "application/sdp")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, p := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/api/stats"}, {"GET", "/api/streams"}, {"POST", "/whep/cam"},
		{"GET", "/mjpeg/cam"}, {"DELETE", "/whep/cam/x"},
	} {
		if got := req(p.method, p.path, ""); got != http.StatusUnauthorized {
			t.Errorf("%s %s without token: %d, want 401", p.method, p.path, got)
		}
		if got := req(p.method, p.path, "Bearer wrong"); got != http.StatusUnauthorized {
			t.Errorf("%s %s with wrong token: %d, want 401", p.method, p.path, got)
		}
		sep := "?"
		if got := req(p.method, p.path+sep+"token=nope", ""); got != http.StatusUnauthorized {
			t.Errorf("%s %s with wrong query token: %d, want 401", p.method, p.path, got)
		}
	}
	if got := req("GET", "/api/stats", "Bearer s3cret"); got != http.StatusOK {
		t.Errorf("stats with header token: %d, want 200", got)
	}
	if got := req("GET", "/?token=s3cret", ""); got != http.StatusOK {
		t.Errorf("page with query token: %d, want 200", got)
	}
	if got := req("POST", "/whep/cam?token=s3cret", ""); got != http.StatusBadRequest {
		t.Errorf("garbage offer with token: %d, want 400", got)
	}
	if got := req("POST", "/whep/nosuch?token=s3cret", ""); got != http.StatusNotFound {
		t.Errorf("unknown stream: %d, want 404", got)
	}
}

// pionViewer is an in-process WHEP viewer (whepclient) that also keeps the
// RTP timestamps it saw and the metadata it decoded, to match them up.
type pionViewer struct {
	pc       *webrtc.PeerConnection
	location string // the session URL's path

	mu        sync.Mutex
	rtpTS     map[uint32]int // RTP timestamps seen on the track (frames)
	packets   int
	metaSeqTS map[uint64]uint32
	overlays  *overlayMsg
	lastMeta  frameMsg
}

// dial connects a viewer to stream. block, if not nil, makes the metadata
// handler wait on it (a viewer that never reads).
func dial(t *testing.T, base, stream, token string, block chan struct{}) *pionViewer {
	t.Helper()
	return dialTB(t, base, stream, token, block)
}

// dialB is dial for benchmarks.
func dialB(b *testing.B, base, stream string) *pionViewer {
	b.Helper()
	return dialTB(b, base, stream, "", nil)
}

func dialTB(t testing.TB, base, stream, token string, block chan struct{}) *pionViewer {
	t.Helper()
	v := &pionViewer{rtpTS: map[uint32]int{}, metaSeqTS: map[uint64]uint32{}}
	opt := whepclient.Options{Token: token}
	opt.OnRTP = func(p *rtp.Packet) {
		v.mu.Lock()
		v.rtpTS[p.Timestamp]++
		v.packets++
		v.mu.Unlock()
	}
	opt.OnMessage = func(data []byte) {
		if block != nil {
			<-block
			return
		}
		var probe struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(data, &probe) != nil {
			return
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		switch probe.Type {
		case "overlays":
			var o overlayMsg
			_ = json.Unmarshal(data, &o)
			v.overlays = &o
		case "frame":
			var fm frameMsg
			_ = json.Unmarshal(data, &fm)
			v.metaSeqTS[fm.Seq] = fm.RTP
			v.lastMeta = fm
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wv, err := whepclient.Dial(ctx, base, stream, opt)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := url.Parse(wv.Location)
	if err != nil || !strings.Contains(loc.Path, "/whep/"+stream+"/") {
		t.Fatalf("WHEP Location %q is not a session of stream %s (%v)", wv.Location, stream, err)
	}
	v.pc, v.location = wv.PC, loc.Path
	return v
}

// dialGhost posts a valid offer and never uses the answer.
func dialGhost(t *testing.T, base, stream string) *webrtc.PeerConnection {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	res, err := http.Post(base+"/whep/"+stream, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("ghost WHEP POST: %d", res.StatusCode)
	}
	return pc
}

// matched counts metadata messages whose RTP timestamp arrived on the track.
func (v *pionViewer) matched() (meta, frames, match int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, ts := range v.metaSeqTS {
		if v.rtpTS[ts] > 0 {
			match++
		}
	}
	return len(v.metaSeqTS), len(v.rtpTS), match
}

func TestViewerGetsVideoAndMatchingMetadata(t *testing.T) {
	for _, codec := range []string{CodecVP8, CodecH264} {
		t.Run(codec, func(t *testing.T) { testViewer(t, codec, "") })
	}
	// GStreamer encoders through OpenCV, the path to hardware encoders.
	t.Run("gstreamer-x264enc", func(t *testing.T) {
		testViewer(t, CodecH264, "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=1500")
	})
	t.Run("gstreamer-vp8enc", func(t *testing.T) {
		testViewer(t, CodecVP8, "vp8enc deadline=1 cpu-used=8 keyframe-max-dist=30 target-bitrate=1500000")
	})
}

func testViewer(t *testing.T, codec, gst string) {
	c := loadClip(t)
	matcheck.Leaks(t)
	cfg := testConfig()
	cfg.Codec = codec
	cfg.GStreamerEncoder = gst
	s, base := startSink(t, cfg)
	zones := []Zone{{Name: "door", Polygon: []geom.Point{{X: 0.1, Y: 0.5}, {X: 0.5, Y: 0.5}, {X: 0.5, Y: 1}}}}
	lines := []Line{{Name: "gate", From: geom.Point{X: 0.2, Y: 0.6}, To: geom.Point{X: 0.8, Y: 0.6}}}
	if err := s.SetOverlays("cam", zones, lines); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.feed(ctx, s, "cam", 25) })
	defer func() { cancel(); wg.Wait() }()

	v := dial(t, base, "cam", "", nil)
	defer v.pc.Close()
	waitFor(t, 20*time.Second, "30 frames with matching metadata", func() bool {
		_, _, m := v.matched()
		return m >= 30
	})
	v.mu.Lock()
	ov, last := v.overlays, v.lastMeta
	v.mu.Unlock()
	if ov == nil || len(ov.Zones) != 1 || ov.Zones[0].Name != "door" || len(ov.Lines) != 1 || ov.Lines[0].To != [2]float64{0.8, 0.6} {
		t.Fatalf("overlays message = %+v", ov)
	}
	if last.Width != 768 || last.Height != 576 || last.CapturedMs <= 0 {
		t.Fatalf("frame metadata = %+v", last)
	}
	want := c.tracks[int(last.Seq)%len(c.frames)]
	if len(last.Boxes) != len(want) {
		t.Fatalf("frame %d metadata has %d boxes, the frame had %d tracks", last.Seq, len(last.Boxes), len(want))
	}
	for i, b := range last.Boxes {
		if b.ID != want[i].ID || b.Label != "person" {
			t.Fatalf("box %d = %+v, want track %+v", i, b, want[i])
		}
	}

	// WHEP DELETE ends the session on the server.
	req, _ := http.NewRequest("DELETE", base+v.location, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", res.StatusCode)
	}
	st := s.lookup("cam")
	waitFor(t, 5*time.Second, "viewer removed", func() bool { return st.nViewers.Load() == 0 })
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", res.StatusCode)
	}
	stats := st.snapshot()
	if stats.Encoded == 0 || stats.Written < stats.Encoded {
		t.Fatalf("stats = %+v", stats)
	}
}

// TestBadViewersDoNotLeak connects a viewer that vanishes without a DELETE
// and one that never reads its metadata, and checks that the sink frees
// every goroutine and Mat and keeps accepting frames.
func TestBadViewersDoNotLeak(t *testing.T) {
	c := loadClip(t)
	matcheck.Leaks(t)
	http.DefaultClient.CloseIdleConnections()
	base0 := runtime.NumGoroutine()

	s, base := startSink(t, testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var maxWrite time.Duration
	var writes int
	wg.Go(func() {
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			f := c.frame("cam", seq)
			start := time.Now()
			_ = s.Write(ctx, f)
			maxWrite = max(maxWrite, time.Since(start))
			writes++
			f.Release()
		}
	})

	waitFor(t, 5*time.Second, "stream", func() bool { return s.lookup("cam") != nil })
	gone := dial(t, base, "cam", "", nil)
	block := make(chan struct{})
	stuck := dial(t, base, "cam", "", block)
	st := func() *stream { return s.lookup("cam") }
	waitFor(t, 20*time.Second, "both viewers receiving", func() bool {
		_, f1, _ := gone.matched()
		stuck.mu.Lock()
		f2 := len(stuck.rtpTS)
		stuck.mu.Unlock()
		return f1 > 10 && f2 > 10
	})
	// Vanish: close the peer without telling the server.
	_ = gone.pc.Close()
	waitFor(t, 15*time.Second, "vanished viewer removed", func() bool { return st().nViewers.Load() == 1 })
	// A ghost gets an answer but never takes part in ICE: the server's ICE
	// checks fail and it frees the session on its own.
	ghost := dialGhost(t, base, "cam")
	if st().nViewers.Load() != 2 {
		t.Fatalf("viewers = %d after the ghost joined, want 2", st().nViewers.Load())
	}
	_ = ghost.Close()
	waitFor(t, 30*time.Second, "ghost viewer removed", func() bool { return st().nViewers.Load() == 1 })

	cancel()
	wg.Wait()
	t.Logf("%d writes, slowest %v, stats %+v", writes, maxWrite, st().snapshot())
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	close(block)
	_ = stuck.pc.Close()
	http.DefaultClient.CloseIdleConnections()
	waitFor(t, 15*time.Second, fmt.Sprintf("goroutines back to %d", base0), func() bool {
		return runtime.NumGoroutine() <= base0
	})
	f := c.frame("cam", 1)
	defer f.Release()
	if err := s.Write(context.Background(), f); err != ErrClosed {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
	if f.Refs() != 1 {
		t.Fatalf("Write after Close kept a reference: refs = %d", f.Refs())
	}
}

func TestMJPEGDrawsBoxes(t *testing.T) {
	c := loadClip(t)
	matcheck.Leaks(t)
	s, base := startSink(t, testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.feed(ctx, s, "cam", 25) })
	defer func() { cancel(); wg.Wait() }()
	waitFor(t, 5*time.Second, "stream", func() bool { return s.lookup("cam") != nil })

	rctx, rcancel := context.WithCancel(context.Background())
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, "GET", base+"/mjpeg/cam", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	mt, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" {
		t.Fatalf("content type %q: %v", res.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(bufio.NewReader(res.Body), params["boundary"])
	for i := 0; i < 3; i++ {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		img, err := gocv.IMDecode(b, gocv.IMReadColor)
		if err != nil {
			t.Fatal(err)
		}
		if img.Cols() != 768 || img.Rows() != 576 {
			t.Fatalf("jpeg %dx%d", img.Cols(), img.Rows())
		}
		img.Close()
	}
	rcancel()
}

// TestDrawOverlay checks the server-side drawing lands where the boxes are.
func TestDrawOverlay(t *testing.T) {
	c := loadClip(t)
	matcheck.Leaks(t)
	var seq uint64
	for i, tr := range c.tracks {
		if len(tr) > 0 {
			seq = uint64(i)
			break
		}
	}
	f := c.frame("cam", seq)
	defer f.Release()
	if len(f.Tracks) == 0 {
		t.Fatal("background subtraction found nobody in the clip")
	}
	canvas := gocv.NewMat()
	defer canvas.Close()
	picture.Of(f).CopyTo(&canvas)
	drawOverlay(&canvas, f, newOverlayMsg(nil, []Line{{Name: "gate", From: geom.Point{X: 0, Y: 0.5}, To: geom.Point{X: 1, Y: 0.5}}}))
	b := f.Tracks[0].Box
	x, y := int(b.X+b.W/2), int(b.Y)
	px := canvas.GetVecbAt(y, x)
	if px[0] != boxColor.B || px[1] != boxColor.G || px[2] != boxColor.R {
		t.Fatalf("pixel on the top edge of box %v is %v, want the box colour", b, px)
	}
	px = canvas.GetVecbAt(288, 5)
	if px[0] != lineColor.B || px[1] != lineColor.G || px[2] != lineColor.R {
		t.Fatalf("pixel on the line is %v, want the line colour", px)
	}
}

// TestHandlerMountedUnderPrefix mounts Handler on another server, as the
// pipeline may, with the sink's own server off.
func TestHandlerMountedUnderPrefix(t *testing.T) {
	c := loadClip(t)
	matcheck.Leaks(t)
	cfg := Defaults()
	cfg.Listen = ""
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.Connect(context.Background()); err != nil || s.Addr() != nil {
		t.Fatalf("Connect without listen: %v, addr %v", err, s.Addr())
	}
	mux := http.NewServeMux()
	mux.Handle("/preview/", http.StripPrefix("/preview", s.Handler()))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.feed(ctx, s, "cam", 25) })
	defer func() { cancel(); wg.Wait() }()
	waitFor(t, 5*time.Second, "stream", func() bool { return s.lookup("cam") != nil })

	res, err := http.Get(ts.URL + "/preview/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), "requestVideoFrameCallback") || strings.Contains(string(page), "/*SCRIPT*/") {
		t.Fatalf("page: %d, %d bytes, script inlined: %v", res.StatusCode, len(page), strings.Contains(string(page), "requestVideoFrameCallback"))
	}
	v := dial(t, ts.URL+"/preview", "cam", "", nil)
	defer v.pc.Close()
	if !strings.HasPrefix(v.location, "/preview/whep/cam/") {
		t.Fatalf("session URL %q is not under the mount point", v.location)
	}
	waitFor(t, 20*time.Second, "frames with metadata", func() bool { _, _, m := v.matched(); return m >= 5 })
	req, _ := http.NewRequest("DELETE", ts.URL+v.location, nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE %s: %d", v.location, res.StatusCode)
	}
}
