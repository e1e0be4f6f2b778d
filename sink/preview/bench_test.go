package preview

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/picture"
)

// BenchmarkEncode measures what the preview costs per encoded frame:
// BGR -> I420 conversion plus compression of a 768x576 vtest.avi frame.
func BenchmarkEncode(b *testing.B) {
	c := loadClip(b)
	for _, codec := range []string{CodecVP8, CodecH264} {
		b.Run(codec, func(b *testing.B) {
			cfg := Defaults()
			cfg.Codec = codec
			w, h := c.frames[0].Cols(), c.frames[0].Rows()
			enc, err := newEncoder(cfg, w, h)
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			conv := picture.NewI420(w, h)
			defer conv.Close()
			var bytes int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				img, err := conv.Convert(c.frames[i%len(c.frames)])
				if err != nil {
					b.Fatal(err)
				}
				au, err := enc.(yuvEncoder).Encode(img)
				if err != nil {
					b.Fatal(err)
				}
				bytes += len(au)
			}
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/frame")
		})
	}
}

// BenchmarkWrite measures Write, the only preview cost on the pipeline's
// path, with 0, 1 and 5 WebRTC viewers connected (the encoder runs beside it).
func BenchmarkWrite(b *testing.B) {
	c := loadClip(b)
	for _, n := range []int{0, 1, 5} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) {
			cfg := testConfig()
			s, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Connect(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			base := "http://" + s.Addr().String()
			f := c.frame("cam", 1)
			_ = s.Write(context.Background(), f)
			f.Release()
			var vs []*pionViewer
			for i := 0; i < n; i++ {
				vs = append(vs, dialB(b, base, "cam"))
			}
			defer func() {
				for _, v := range vs {
					_ = v.pc.Close()
				}
			}()
			if n > 0 {
				deadline := time.Now().Add(20 * time.Second)
				for _, v := range vs {
					for {
						v.mu.Lock()
						got := v.packets
						v.mu.Unlock()
						if got > 0 {
							break
						}
						if time.Now().After(deadline) {
							b.Fatal("viewer received no video")
						}
						f := c.frame("cam", 2)
						_ = s.Write(context.Background(), f)
						f.Release()
						time.Sleep(40 * time.Millisecond)
					}
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				f := c.frame("cam", uint64(i+3))
				b.StartTimer()
				_ = s.Write(context.Background(), f)
				b.StopTimer()
				f.Release()
				b.StartTimer()
			}
			b.StopTimer()
			st := s.lookup("cam").snapshot()
			b.ReportMetric(float64(st.Encoded), "encoded")
		})
	}
}
