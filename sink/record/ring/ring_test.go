package ring

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// add writes a segment file of n bytes for stream starting at start.
func add(t *testing.T, r *Ring, stream string, start time.Time, n int) Segment {
	t.Helper()
	tmp, err := r.TempPath(stream, "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := r.Add(stream, tmp, start, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPruneOldestFirst(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.UnixMilli(1_700_000_000_000)
	for i := range 10 {
		add(t, r, "a", t0.Add(time.Duration(i)*time.Second), 100)
		add(t, r, "b/c", t0.Add(time.Duration(i)*time.Second+500*time.Millisecond), 50)
	}
	now := t0.Add(10 * time.Second)
	// Age: segments that ended more than 5 s ago go.
	gone, err := r.Prune(now, Limits{MaxAge: 5 * time.Second}, nil)
	if err != nil || len(gone) != 8 {
		t.Fatalf("age prune removed %d (%v), want 8", len(gone), err)
	}
	// Per stream: a keeps 300 bytes (3 segments).
	gone, _ = r.Prune(now, Limits{StreamMaxBytes: 300}, nil)
	if len(gone) != 3 || gone[0].Stream != "a" {
		t.Fatalf("stream prune removed %v, want 3 of a", gone)
	}
	// In total: 600 bytes down to 500; the oldest of any stream goes first.
	gone, _ = r.Prune(now, Limits{MaxBytes: 500}, nil)
	if len(gone) != 2 || gone[0].Stream != "b_c" || gone[1].Stream != "b_c" {
		t.Fatalf("total prune removed %+v, want b_c's two oldest", gone)
	}
	u := r.Usage()
	if u["a"] != [2]int64{3, 300} || u["b_c"] != [2]int64{4, 200} {
		t.Fatalf("usage %v", u)
	}
	// A reopened ring finds the same segments; a crashed segment's part file is removed.
	if err := os.WriteFile(filepath.Join(dir, "a", "part-9.ts"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if u2 := r2.Usage(); u2["a"] != u["a"] || u2["b_c"] != u["b_c"] {
		t.Fatalf("reopened usage %v, want %v", u2, u)
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "part-9.ts")); !os.IsNotExist(err) {
		t.Fatal("part file left after Open")
	}
	// Covering: [t0+7.2s, t0+8.1s] overlaps a's segments at 7 and 8.
	c := r2.Covering("a", t0.Add(7200*time.Millisecond), t0.Add(8100*time.Millisecond))
	if len(c) != 2 || !c[0].Start.Equal(t0.Add(7*time.Second)) {
		t.Fatalf("covering %+v", c)
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{"cam-1": "cam-1", "a/b": "a_b", "..": "_..", "": "_", "x y": "x_y"} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
}
