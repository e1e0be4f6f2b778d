package cascade

import (
	"context"
	"image"
	"testing"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// BenchmarkBlazeFacePersonCrops is the cascade's steady-state cost: the
// shipped SSD's person boxes on vtest.avi frame 100, padded by 10%, cropped,
// preprocessed and run through BlazeFace (front, 128x128) in batches of 1
// and 8 crops on one thread. ns/op is per crop (docs/cascade.md):
//
//	go test -tags matprofile -run - -bench BlazeFace ./cascade/
func BenchmarkBlazeFacePersonCrops(b *testing.B) {
	realpart.File(b, realpart.SampleVideo, vtestPath)
	realpart.File(b, realpart.SSDModel, ssdPath)
	realpart.File(b, realpart.BlazeFace, blazefacePath)
	vc, err := gocv.VideoCaptureFile(vtestPath)
	if err != nil {
		b.Fatal(err)
	}
	defer vc.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	for range 101 {
		vc.Read(&frame)
	}
	ssd, err := infer.Open(infer.Config{Path: ssdPath, Format: "ssd", Labels: "coco", Classes: []string{"person"}}, quietLog)
	if err != nil {
		b.Fatal(err)
	}
	defer ssd.Close()
	dets, err := ssd.DetectImage(frame)
	if err != nil || len(dets) == 0 {
		b.Fatalf("no people on frame 100: %v", err)
	}
	face, err := infer.Open(infer.Config{Path: blazefacePath, Threads: 1, Confidence: 0.6}, quietLog)
	if err != nil {
		b.Fatal(err)
	}
	defer face.Close()
	pool := face.NewInputPool()
	for _, batch := range []int{1, 8} {
		b.Run(map[int]string{1: "batch1", 8: "batch8"}[batch], func(b *testing.B) {
			ins := make([]*infer.Input, batch)
			for i := range ins {
				ins[i] = pool.Get()
				defer ins[i].Release()
			}
			b.ResetTimer()
			for n := 0; n < b.N; n += batch {
				for i := range ins {
					d := dets[(n+i)%len(dets)]
					p := pad(d.Box, DefaultPadding, frame.Cols(), frame.Rows())
					crop := frame.Region(image.Rect(int(p.X), int(p.Y), int(p.X+p.W), int(p.Y+p.H)))
					err := face.Preprocess(crop, ins[i])
					crop.Close()
					if err != nil {
						b.Fatal(err)
					}
				}
				if _, err := face.Detect(context.Background(), ins); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
