package capture

import (
	"context"
	"testing"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/internal/realpart"
)

// BenchmarkDecodeVtest measures decode throughput of vtest.avi (768x576,
// MS-MPEG4) through a file source: frames/s is reported as fps.
func BenchmarkDecodeVtest(b *testing.B) {
	realpart.File(b, realpart.SampleVideo, vtest)
	src, err := New(Config{ID: "v", URL: vtest, Loop: true}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close(context.Background())
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		f, err := src.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		f.Release()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fps")
}

// BenchmarkTestPattern720p measures drawing one 1280x720 test:// frame
// (the backend alone, without pacing).
func BenchmarkTestPattern720p(b *testing.B) {
	p := newPattern(endpoint{kind: kindTest}, Config{Width: 1280, Height: 720})
	defer p.close()
	for b.Loop() {
		m := gocv.NewMat()
		if err := p.read(&m); err != nil {
			b.Fatal(err)
		}
		_ = m.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fps")
}
