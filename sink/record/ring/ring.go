// Package ring is the recorder's rolling buffer on disk: every stream's
// finished segments, each a file that starts on a key frame and is named by
// its wall-clock start and length, so the directory is its own index and
// survives restarts. It finds the segments a clip needs and deletes the
// oldest ones when the buffer is over its age or byte limits.
package ring

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Ext is the segments' file extension (MPEG transport stream).
const Ext = ".ts"

// Segment is one finished segment file.
type Segment struct {
	// Stream is the stream ID.
	Stream string
	// Path is the file's path.
	Path string
	// Start is the wall-clock time of its first (key) frame.
	Start time.Time
	// Dur is how long it plays.
	Dur time.Duration
	// Bytes is the file's size.
	Bytes int64
}

// End returns when the segment stops playing.
func (s Segment) End() time.Time { return s.Start.Add(s.Dur) }

// Limits bound the buffer; zero values mean no limit.
type Limits struct {
	// MaxAge deletes segments that ended longer ago than this.
	MaxAge time.Duration
	// MaxBytes bounds all streams' segments together.
	MaxBytes int64
	// StreamMaxBytes bounds each stream's segments.
	StreamMaxBytes int64
}

// Ring indexes the segments under one directory. It is safe for
// concurrent use.
type Ring struct {
	dir     string
	mu      sync.Mutex
	streams map[string][]Segment // by stream, oldest first
}

// Open indexes the segments already under dir (creating it), each stream in
// its own sub-directory. Files that are not finished segments (a segment cut
// short by a crash keeps its temporary name) are removed.
func Open(dir string) (*Ring, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	r := &Ring{dir: dir, streams: map[string][]Segment{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sd := filepath.Join(dir, e.Name())
		files, err := os.ReadDir(sd)
		if err != nil {
			return nil, fmt.Errorf("ring: %w", err)
		}
		for _, f := range files {
			p := filepath.Join(sd, f.Name())
			start, dur, ok := parseName(f.Name())
			if !ok {
				_ = os.Remove(p)
				continue
			}
			info, err := f.Info()
			if err != nil {
				continue
			}
			r.streams[e.Name()] = append(r.streams[e.Name()], Segment{Stream: e.Name(), Path: p, Start: start, Dur: dur, Bytes: info.Size()})
		}
		slices.SortFunc(r.streams[e.Name()], func(a, b Segment) int { return a.Start.Compare(b.Start) })
	}
	return r, nil
}

// SafeName turns a stream ID into a directory name: characters other than
// letters, digits, '.', '-' and '_' become '_'.
func SafeName(stream string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, stream)
	if s == "" || strings.Trim(s, ".") == "" {
		s = "_" + s
	}
	return s
}

// StreamDir returns (and creates) the directory of stream's segments.
func (r *Ring) StreamDir(stream string) (string, error) {
	d := filepath.Join(r.dir, SafeName(stream))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("ring: %w", err)
	}
	return d, nil
}

// TempPath returns a name in stream's directory for a segment being
// written (Open removes such files after a crash).
func (r *Ring) TempPath(stream, tag string) (string, error) {
	d, err := r.StreamDir(stream)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "part-"+tag+Ext), nil
}

// Add renames the finished segment file at tmp into the ring and indexes it.
func (r *Ring) Add(stream, tmp string, start time.Time, dur time.Duration) (Segment, error) {
	info, err := os.Stat(tmp)
	if err != nil {
		return Segment{}, fmt.Errorf("ring: %w", err)
	}
	d, err := r.StreamDir(stream)
	if err != nil {
		return Segment{}, err
	}
	seg := Segment{Stream: SafeName(stream), Path: filepath.Join(d, segName(start, dur)), Start: start, Dur: dur, Bytes: info.Size()}
	if err := os.Rename(tmp, seg.Path); err != nil {
		return Segment{}, fmt.Errorf("ring: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	segs := r.streams[seg.Stream]
	i, _ := slices.BinarySearchFunc(segs, seg, func(a, b Segment) int { return a.Start.Compare(b.Start) })
	r.streams[seg.Stream] = slices.Insert(segs, i, seg)
	return seg, nil
}

// Covering returns stream's segments that overlap [from, to], oldest first.
func (r *Ring) Covering(stream string, from, to time.Time) []Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Segment
	for _, s := range r.streams[SafeName(stream)] {
		if s.End().After(from) && s.Start.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// Span returns the start of stream's oldest segment and the end of its
// newest; ok is false when it has none.
func (r *Ring) Span(stream string) (oldest, newest time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	segs := r.streams[SafeName(stream)]
	if len(segs) == 0 {
		return time.Time{}, time.Time{}, false
	}
	return segs[0].Start, segs[len(segs)-1].End(), true
}

// Usage returns the number of segments and their bytes, per stream.
func (r *Ring) Usage() map[string][2]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][2]int64{}
	for st, segs := range r.streams {
		var b int64
		for _, s := range segs {
			b += s.Bytes
		}
		out[st] = [2]int64{int64(len(segs)), b}
	}
	return out
}

// Prune deletes segments, oldest first, until the buffer is within l: by
// age, then each stream's bytes, then all streams' bytes together. keep
// (nil: none) protects segments from the age limit only (a clip still being
// cut needs them); byte limits always hold. It returns what it deleted.
func (r *Ring) Prune(now time.Time, l Limits, keep func(Segment) bool) ([]Segment, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []Segment
	drop := func(st string, i int) {
		gone = append(gone, r.streams[st][i])
		r.streams[st] = slices.Delete(r.streams[st], i, i+1)
	}
	if l.MaxAge > 0 {
		for st := range r.streams {
			for i := 0; i < len(r.streams[st]); {
				s := r.streams[st][i]
				if now.Sub(s.End()) > l.MaxAge && (keep == nil || !keep(s)) {
					drop(st, i)
					continue
				}
				i++
			}
		}
	}
	total := int64(0)
	for st, segs := range r.streams {
		b := int64(0)
		for _, s := range segs {
			b += s.Bytes
		}
		for l.StreamMaxBytes > 0 && b > l.StreamMaxBytes && len(r.streams[st]) > 0 {
			b -= r.streams[st][0].Bytes
			drop(st, 0)
		}
		total += b
	}
	for l.MaxBytes > 0 && total > l.MaxBytes {
		// The oldest segment of any stream goes first.
		oldest := ""
		for st, segs := range r.streams {
			if len(segs) > 0 && (oldest == "" || segs[0].Start.Before(r.streams[oldest][0].Start)) {
				oldest = st
			}
		}
		if oldest == "" {
			break
		}
		total -= r.streams[oldest][0].Bytes
		drop(oldest, 0)
	}
	var errs []error
	for _, s := range gone {
		if err := os.Remove(s.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return gone, errors.Join(errs...)
}

// segName is a finished segment's file name: start in Unix milliseconds and
// length in milliseconds.
func segName(start time.Time, dur time.Duration) string {
	return fmt.Sprintf("%d-%d%s", start.UnixMilli(), dur.Milliseconds(), Ext)
}

func parseName(name string) (time.Time, time.Duration, bool) {
	base, ok := strings.CutSuffix(name, Ext)
	if !ok {
		return time.Time{}, 0, false
	}
	a, b, ok := strings.Cut(base, "-")
	if !ok {
		return time.Time{}, 0, false
	}
	ms, err1 := strconv.ParseInt(a, 10, 64)
	dur, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || dur < 0 {
		return time.Time{}, 0, false
	}
	return time.UnixMilli(ms), time.Duration(dur) * time.Millisecond, true
}
