package natsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

func (s *Sink) wantSnapshot(t event.Type) bool {
	return s.cfg.Snapshots != nil && slices.Contains(s.cfg.Snapshots.Types, string(t))
}

// snapshotKey names an event's snapshot in the bucket.
func snapshotKey(e event.Event) string { return e.ID + ".jpg" }

// encodeSnapshot JPEG-encodes f's image, or the event box (normalised) with a
// 20% margin when cfg.Crop is set. It fails when the image was released.
func encodeSnapshot(f *stages.Frame, box *geom.Rect, cfg *SnapshotConfig) ([]byte, error) {
	img, err := picture.Mat(f)
	if err != nil {
		return nil, errors.New("natsink: frame image already released (the runner must keep images for sinks with snapshots)")
	}
	if cfg.Crop && box != nil {
		w, h := float64(img.Cols()), float64(img.Rows())
		mx, my := box.W*0.2, box.H*0.2
		r := image.Rect(int((box.X-mx)*w), int((box.Y-my)*h), int((box.X+box.W+mx)*w), int((box.Y+box.H+my)*h)).
			Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
		if !r.Empty() {
			region := img.Region(r)
			defer region.Close()
			img = region
		}
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, cfg.Quality})
	if err != nil {
		return nil, fmt.Errorf("natsink: encode snapshot: %w", err)
	}
	defer buf.Close()
	return bytes.Clone(buf.GetBytes()), nil
}

// putSnapshot stores jpg under key, creating the bucket on first use. A put
// of the same key twice (a replay) overwrites it with the same bytes.
func (s *Sink) putSnapshot(key string, jpg []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.PublishTimeout)
	defer cancel()
	if s.objStore == nil {
		sc := s.cfg.Snapshots
		obs, err := s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: sc.Bucket,
			Description: "Osprey event snapshots", TTL: sc.MaxAge, Replicas: s.cfg.JetStream.Replicas, Storage: jetstream.FileStorage})
		if err != nil {
			return fmt.Errorf("snapshot bucket %s: %w", sc.Bucket, err)
		}
		s.objStore = obs
	}
	if _, err := s.objStore.PutBytes(ctx, key, jpg); err != nil {
		return fmt.Errorf("put snapshot %s: %w", key, err)
	}
	s.snapPut.Add(1)
	return nil
}
