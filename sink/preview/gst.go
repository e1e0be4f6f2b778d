package preview

import (
	"errors"
	"fmt"
	"image"
	"net"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"gocv.io/x/gocv"
)

// gstEncoder hands BGR frames to a GStreamer encoder through OpenCV's
// VideoWriter (the way to reach a hardware encoder such as Jetson's
// nvv4l2h264enc). GStreamer packetises the output as RTP to a loopback UDP
// socket; gstEncoder reassembles each access unit so the sink can stamp and
// send it like its own encoders' output.
type gstEncoder struct {
	vw     *gocv.VideoWriter
	conn   *net.UDPConn
	codec  string
	w, h   int
	pkt    [64 << 10]byte
	h264   codecs.H264Packet
	vp8    codecs.VP8Packet
	au     []byte
	scaled gocv.Mat
}

// gstWait bounds how long Encode waits for the encoder's output of a frame.
const gstWait = time.Second

func gstPipeline(cfg Config, port int) string {
	pay := "h264parse config-interval=-1 ! rtph264pay mtu=1200 pt=96 config-interval=-1 aggregate-mode=zero-latency"
	if cfg.Codec == CodecVP8 {
		pay = "rtpvp8pay mtu=1200 pt=96"
	}
	return fmt.Sprintf("appsrc ! videoconvert ! video/x-raw,format=I420 ! %s ! %s ! udpsink host=127.0.0.1 port=%d sync=false async=false",
		cfg.GStreamerEncoder, pay, port)
}

func newGstEncoder(cfg Config, w, h int) (*gstEncoder, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("preview: gstreamer encoder: open loopback UDP socket: %w", err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	fps := cfg.MaxFPS
	if fps <= 0 {
		fps = 30
	}
	pipeline := gstPipeline(cfg, conn.LocalAddr().(*net.UDPAddr).Port)
	vw, err := gocv.VideoWriterFile(pipeline, "H264", fps, w, h, true)
	if err != nil || !vw.IsOpened() {
		if vw != nil {
			_ = vw.Close()
		}
		_ = conn.Close()
		return nil, fmt.Errorf("preview: OpenCV/GStreamer cannot open %q: check gstreamer_encoder names an installed encoder for %s (gst-inspect-1.0)", pipeline, cfg.Codec)
	}
	return &gstEncoder{vw: vw, conn: conn, codec: cfg.Codec, w: w, h: h, scaled: gocv.NewMat()}, nil
}

// EncodeMat encodes one BGR frame, scaling it to the encoder's size.
func (g *gstEncoder) EncodeMat(m gocv.Mat) ([]byte, error) {
	in := m
	if m.Cols() != g.w || m.Rows() != g.h {
		gocv.Resize(m, &g.scaled, image.Pt(g.w, g.h), 0, 0, gocv.InterpolationArea)
		in = g.scaled
	}
	// Discard what is left of an access unit that came too late last time.
	_ = g.conn.SetReadDeadline(time.Now())
	for {
		if _, err := g.conn.Read(g.pkt[:]); err != nil {
			break
		}
	}
	g.au = g.au[:0]
	if err := g.vw.Write(in); err != nil {
		return nil, fmt.Errorf("preview: gstreamer encoder: write frame: %w", err)
	}
	_ = g.conn.SetReadDeadline(time.Now().Add(gstWait))
	for {
		n, err := g.conn.Read(g.pkt[:])
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("preview: gstreamer encoder gave no output within %v", gstWait)
			}
			return nil, fmt.Errorf("preview: gstreamer encoder: read: %w", err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(g.pkt[:n]); err != nil {
			continue
		}
		var data []byte
		if g.codec == CodecVP8 {
			data, err = g.vp8.Unmarshal(p.Payload)
		} else {
			data, err = g.h264.Unmarshal(p.Payload)
		}
		if err != nil {
			continue
		}
		g.au = append(g.au, data...)
		if p.Marker {
			return append([]byte(nil), g.au...), nil
		}
	}
}

// ForceKeyFrame is not available through OpenCV's writer: the encoder's own
// key-frame interval (set it in gstreamer_encoder) bounds a new viewer's wait.
func (g *gstEncoder) ForceKeyFrame() {}

func (g *gstEncoder) Close() error {
	err := g.vw.Close()
	_ = g.conn.Close()
	_ = g.scaled.Close()
	return err
}
