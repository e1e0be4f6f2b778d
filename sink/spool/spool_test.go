package spool

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/osprey-vision/osprey/internal/realpart"
)

func rec(i int) []byte { return fmt.Appendf(nil, "event-%06d-%s", i, "payload") }

func mustOpen(t *testing.T, dir string, o Options) *Spool {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func readAll(t *testing.T, s *Spool) []Record {
	t.Helper()
	var out []Record
	for {
		rs, err := s.Read(7)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if len(rs) == 0 {
			return out
		}
		out = append(out, rs...)
	}
}

func TestAppendReadAckRestart(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxBytes: 1 << 20, SegmentBytes: 4 << 10})
	for i := 1; i <= 500; i++ {
		if _, err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	got := readAll(t, s)
	if len(got) != 500 {
		t.Fatalf("read %d records, want 500", len(got))
	}
	for i, r := range got {
		if string(r.Data) != string(rec(i+1)) || r.Seq != uint64(i+1) {
			t.Fatalf("record %d = seq %d %q", i, r.Seq, r.Data)
		}
	}
	// Deliver the first 300; the rest must come back after a restart.
	if err := s.Ack(300); err != nil {
		t.Fatal(err)
	}
	if p := s.Pending(); p != 200 {
		t.Fatalf("pending = %d, want 200", p)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	s = mustOpen(t, dir, Options{MaxBytes: 1 << 20, SegmentBytes: 4 << 10})
	defer s.Close()
	got = readAll(t, s)
	if len(got) != 200 || string(got[0].Data) != string(rec(301)) || string(got[199].Data) != string(rec(500)) {
		t.Fatalf("after restart read %d records, first %q", len(got), got[0].Data)
	}
	// New appends continue the sequence.
	seq, err := s.Append(rec(501))
	if err != nil || seq != 501 {
		t.Fatalf("append after restart: seq %d err %v", seq, err)
	}
	// Acknowledged segments are deleted from disk.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err := s.Ack(501); err != nil {
		t.Fatal(err)
	}
	after, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(after) >= len(segs) || len(after) != 1 {
		t.Fatalf("segments before ack %d, after %d: acked segments not removed", len(segs), len(after))
	}
}

func TestRewindReturnsUnacked(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 1 << 20, SegmentBytes: 4 << 10})
	defer s.Close()
	for i := 1; i <= 100; i++ {
		if _, err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	readAll(t, s)
	if err := s.Ack(42); err != nil {
		t.Fatal(err)
	}
	s.Rewind()
	got := readAll(t, s)
	if len(got) != 58 || got[0].Seq != 43 || got[57].Seq != 100 {
		t.Fatalf("after rewind got %d records starting at %d", len(got), got[0].Seq)
	}
}

func TestTornTailIsCutOff(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	for i := 1; i <= 10; i++ {
		if _, err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("want one segment, got %v", segs)
	}
	st, _ := os.Stat(segs[0])
	// A write interrupted halfway through record 10, as after SIGKILL.
	if err := os.Truncate(segs[0], st.Size()-5); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, Options{})
	got := readAll(t, s)
	if len(got) != 9 || s.TornTotal() != 1 {
		t.Fatalf("read %d records, torn %d; want 9 and 1", len(got), s.TornTotal())
	}
	// The spool keeps working after the cut: the next record gets seq 10.
	if seq, err := s.Append(rec(10)); err != nil || seq != 10 {
		t.Fatalf("append after torn tail: seq %d err %v", seq, err)
	}
	s.Close()

	// A flipped byte inside a record is caught by the checksum too.
	b, _ := os.ReadFile(segs[0])
	b[len(b)-3] ^= 0xff
	os.WriteFile(segs[0], b, 0o644)
	s = mustOpen(t, dir, Options{})
	defer s.Close()
	if got := readAll(t, s); len(got) != 9 || s.TornTotal() != 1 {
		t.Fatalf("corrupt record: read %d, torn %d", len(got), s.TornTotal())
	}
}

func TestTornAckFileReplaysEverything(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	for i := 1; i <= 5; i++ {
		s.Append(rec(i))
	}
	s.Ack(3)
	s.Close()
	os.WriteFile(filepath.Join(dir, ackName), []byte("garbage!"), 0o644)
	s = mustOpen(t, dir, Options{})
	defer s.Close()
	if got := readAll(t, s); len(got) != 5 {
		t.Fatalf("with a torn ack file read %d records, want all 5 (de-duplicated downstream)", len(got))
	}
}

func TestFullDropsOldestAndCounts(t *testing.T) {
	dir := t.TempDir()
	o := Options{MaxBytes: 16 << 10, SegmentBytes: 4 << 10}
	s := mustOpen(t, dir, o)
	const n = 2000 // ~80 KB of records into a 16 KiB spool
	for i := 1; i <= n; i++ {
		if _, err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
		if s.Bytes() > o.MaxBytes {
			t.Fatalf("spool holds %d bytes, over max %d", s.Bytes(), o.MaxBytes)
		}
	}
	got := readAll(t, s)
	dropped := s.DroppedTotal()
	if dropped == 0 || uint64(len(got))+dropped != n {
		t.Fatalf("kept %d + dropped %d != appended %d", len(got), dropped, n)
	}
	// What is kept is the newest, in order, with no gap.
	for i, r := range got {
		if want := rec(int(dropped) + i + 1); string(r.Data) != string(want) {
			t.Fatalf("kept record %d = %q, want %q", i, r.Data, want)
		}
	}
	// Acknowledged records are not counted as dropped when their segment goes.
	if err := s.Ack(uint64(n)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 1000; i++ {
		s.Append(rec(i))
		if rs, _ := s.Read(1); len(rs) == 1 {
			s.Ack(rs[0].Seq)
		}
	}
	if s.DroppedTotal() != dropped {
		t.Fatalf("dropped grew from %d to %d although everything was acknowledged", dropped, s.DroppedTotal())
	}
	s.Close()
}

func TestDropWhileReading(t *testing.T) {
	// The reader is mid-way through the oldest segment when it is dropped:
	// the cursor must move to the oldest surviving record, not past or before it.
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 16 << 10, SegmentBytes: 4 << 10})
	defer s.Close()
	for i := 1; i <= 100; i++ {
		s.Append(rec(i))
	}
	s.Read(10)
	for i := 101; i <= 1000; i++ {
		s.Append(rec(i))
	}
	got := readAll(t, s)
	if uint64(len(got))+s.DroppedTotal() != 1000 {
		t.Fatalf("read %d + dropped %d != 1000", len(got), s.DroppedTotal())
	}
	seqs := make([]uint64, len(got))
	for i, r := range got {
		seqs[i] = r.Seq
	}
	if !sort.SliceIsSorted(seqs, func(i, j int) bool { return seqs[i] < seqs[j] }) || seqs[len(seqs)-1] != 1000 {
		t.Fatalf("records out of order or missing the newest: %v", seqs[len(seqs)-3:])
	}
}

func TestTooLarge(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 8 << 10})
	defer s.Close()
	_, err := s.Append(make([]byte, 6<<10))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestBadFileInDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.seg"), nil, 0o644)
	_, err := Open(dir, Options{})
	want := "spool: unexpected file x.seg in " + dir + ": remove it or use another spool directory"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// TestDiskFull mounts a tiny tmpfs (needs root: see realpart.Root) and fills it.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		realpart.Missing(t, realpart.Root, fmt.Sprintf("mount -t tmpfs: %v: %s", err, strings.TrimSpace(string(out))))
	}
	defer exec.Command("umount", dir).Run()
	s := mustOpen(t, filepath.Join(dir, "spool"), Options{MaxBytes: 1 << 20, SegmentBytes: 1 << 20})
	defer s.Close()
	var err error
	n := 0
	for ; n < 10000 && err == nil; n++ {
		_, err = s.Append(rec(n + 1))
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("after %d appends err = %v, want ErrDiskFull", n, err)
	}
	t.Logf("disk full after %d records: %v", n-1, err)
	// The records that were accepted are intact and readable.
	if got := readAll(t, s); len(got) != n-1 {
		t.Fatalf("read %d records after disk full, want %d", len(got), n-1)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		b.Run(p.String(), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{Sync: p})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			r := make([]byte, 300)
			for b.Loop() {
				if _, err := s.Append(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
