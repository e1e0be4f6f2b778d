package record

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/sink/record/ring"
	"github.com/osprey-vision/osprey/stages"
)

// diskUsage returns the bytes of every file under dir/segments (segments
// being written included) by stream directory, and the largest finished
// segment.
func diskUsage(t *testing.T, dir string) (map[string]int64, int64) {
	t.Helper()
	per := map[string]int64{}
	var largest int64
	err := filepath.WalkDir(filepath.Join(dir, "segments"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil // deleted meanwhile
		}
		per[filepath.Base(filepath.Dir(p))] += info.Size()
		if filepath.Ext(p) == ring.Ext && info.Size() > largest {
			largest = info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return per, largest
}

// TestRetentionHoldsLimits records two streams continuously for 30 s of
// video each, far more than the limits allow, and checks the files on disk
// after every frame: each stream within stream_max_bytes and both within
// max_bytes, give or take the segment being written.
func TestRetentionHoldsLimits(t *testing.T) {
	matcheck.Leaks(t)
	cfg := testConfig(t.TempDir())
	cfg.Continuous = true
	cfg.Encode.Bitrate = 200_000
	cfg.Retain.StreamMaxBytes = 80_000
	cfg.Retain.MaxBytes = 120_000
	s, _, _ := newTestSink(t, cfg, nil)
	a, b := pattern(t, 320, 240), pattern(t, 320, 240)
	const fps, n = 20, 600
	t0 := time.Now().Add(-n * time.Second / fps)
	var maxStream, maxTotal, seg int64
	for k := range n {
		for id, src := range map[string]stages.Source{"a": a, "b": b} {
			f, err := src.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			f.Stream = id
			f.Captured = t0.Add(time.Duration(k) * time.Second / fps)
			if err := s.Write(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			f.Release()
		}
		time.Sleep(2 * time.Millisecond)
		if k%10 == 0 {
			per, largest := diskUsage(t, cfg.Dir)
			seg = max(seg, largest)
			var total int64
			for _, v := range per {
				maxStream = max(maxStream, v)
				total += v
			}
			maxTotal = max(maxTotal, total)
		}
	}
	_ = s.Close(context.Background())
	deleted := value(s.stats.deletedB)
	t.Logf("largest segment %d bytes; on disk at most %d bytes in a stream (limit %d), %d in total (limit %d); retention deleted %.0f bytes",
		seg, maxStream, cfg.Retain.StreamMaxBytes, maxTotal, cfg.Retain.MaxBytes, deleted)
	if deleted < float64(cfg.Retain.MaxBytes) {
		t.Fatalf("retention deleted %.0f bytes: the run did not overflow the limits", deleted)
	}
	if maxStream > cfg.Retain.StreamMaxBytes+seg || maxTotal > cfg.Retain.MaxBytes+seg {
		t.Fatalf("over the limits by more than one segment (%d bytes)", seg)
	}
}
