// Package spool is a durable, bounded, on-disk FIFO of opaque records: the
// buffer between "an event was created" and "the destination acknowledged it".
//
// Layout: a directory of segment files named by the sequence number of their
// first record (00000000000000000001.seg, ...) plus a small "ack" file that
// holds the highest acknowledged sequence number. Each record is
//
//	len u32 | crc32c(seq|payload) u32 | seq u64 | payload
//
// (little endian), so a torn write after SIGKILL or power loss is detected on
// Open and cut off (counted in TornTotal), never replayed as garbage.
//
// Records are read in order through a cursor (Read) and acknowledged with Ack;
// Rewind moves the cursor back to the first unacknowledged record after a
// failed delivery. A restart with the same directory replays exactly the
// records after the persisted ack pointer. The spool is bounded by MaxBytes:
// when an Append would exceed it, whole segments are dropped oldest first and
// every unacknowledged record dropped that way is counted in DroppedTotal.
//
// Durability (Options.Sync): SyncAlways fsyncs the segment after every Append
// and the ack file after every Ack, so an appended record survives power loss;
// SyncInterval fsyncs at most every Options.Interval (a crash of the machine
// may lose that much, a crash of the process loses nothing: the data is in the
// page cache); SyncNever leaves flushing to the OS. The ack file is written in
// place (16 bytes with its own checksum): if it is torn, Open falls back to
// replaying every record still on disk, which a de-duplicating destination
// (JetStream Nats-Msg-Id) absorbs.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SyncPolicy says when the spool calls fsync.
type SyncPolicy int

// The sync policies; see the package comment.
const (
	SyncAlways SyncPolicy = iota
	SyncInterval
	SyncNever
)

// ParseSyncPolicy parses "always", "interval" or "never" ("" is "always").
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "", "always":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	case "never":
		return SyncNever, nil
	}
	return 0, fmt.Errorf("spool: unknown fsync policy %q: use always, interval or never", s)
}

// String returns the policy's config name.
func (p SyncPolicy) String() string {
	switch p {
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return "always"
}

// Options configures a Spool. The zero value is usable: 64 MiB, SyncAlways.
type Options struct {
	// MaxBytes bounds the bytes on disk (segments, headers included). When an
	// Append would pass it, the oldest segments are dropped. Default 64 MiB.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started; the
	// unit in which old records are dropped. Default MaxBytes/16, at least 4 KiB.
	SegmentBytes int64
	// Sync is the fsync policy; Interval applies to SyncInterval (default 100ms).
	Sync     SyncPolicy
	Interval time.Duration
}

// Record is one spooled record.
type Record struct {
	Seq  uint64
	Data []byte
}

// Errors returned by the spool.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("spool: closed")
	// ErrTooLarge is returned by Append for a record that cannot fit in MaxBytes.
	ErrTooLarge = errors.New("spool: record larger than the spool's max bytes")
	// ErrDiskFull wraps a write that failed for lack of space.
	ErrDiskFull = errors.New("spool: disk full")
)

const (
	headerLen  = 16
	segExt     = ".seg"
	ackName    = "ack"
	ackFileLen = 16
	defaultMax = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type segment struct {
	first, last uint64 // last < first when empty
	path        string
	size        int64
}

// Spool is a durable FIFO; see the package comment. Its methods are safe for
// concurrent use: typically one goroutine appends and another reads and acks.
type Spool struct {
	dir  string
	opts Options

	mu      sync.Mutex
	segs    []*segment
	active  *os.File // the last segment, opened for append
	ackF    *os.File
	ack     uint64 // highest acknowledged seq
	next    uint64 // seq of the next Append
	total   int64
	dropped uint64
	torn    uint64
	dirty   bool // segment written since the last fsync
	closed  bool

	// read cursor: the next record to return from Read.
	rSeq uint64
	rSeg int
	rOff int64
	rF   *os.File // read handle on segs[rSeg]

	ready chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup
}

// Open opens or creates the spool in dir, checks every segment, cuts off a torn
// tail and positions the read cursor after the persisted ack pointer.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = defaultMax
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = opts.MaxBytes / 16
	}
	opts.SegmentBytes = max(opts.SegmentBytes, 4<<10)
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool: create directory %s: %w", dir, err)
	}
	s := &Spool{dir: dir, opts: opts, ready: make(chan struct{}, 1), stop: make(chan struct{})}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, err
	}
	if opts.Sync == SyncInterval {
		s.wg.Go(s.syncLoop)
	}
	if s.pendingLocked() > 0 {
		s.signal()
	}
	return s, nil
}

func (s *Spool) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: read directory %s: %w", s.dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segExt) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segExt), 10, 64)
		if err != nil || first == 0 {
			return fmt.Errorf("spool: unexpected file %s in %s: remove it or use another spool directory", name, s.dir)
		}
		s.segs = append(s.segs, &segment{first: first, last: first - 1, path: filepath.Join(s.dir, name)})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].first < s.segs[j].first })

	// Check every segment; keep the valid prefix of each.
	for _, sg := range s.segs {
		if err := s.scan(sg); err != nil {
			return err
		}
		s.total += sg.size
	}
	// Drop empty segments except the last (it may become the active one).
	kept := s.segs[:0]
	for i, sg := range s.segs {
		if sg.last < sg.first && i != len(s.segs)-1 {
			_ = os.Remove(sg.path)
			continue
		}
		kept = append(kept, sg)
	}
	s.segs = kept

	ack, ackOK, err := s.readAck()
	if err != nil {
		return err
	}
	switch {
	case len(s.segs) > 0:
		first := s.segs[0].first
		if !ackOK || ack < first-1 {
			// Unknown or stale pointer: replay everything still on disk.
			ack = first - 1
		}
		last := s.segs[len(s.segs)-1].last
		if last < s.segs[len(s.segs)-1].first {
			last = s.segs[len(s.segs)-1].first - 1
		}
		ack = min(ack, last)
		s.next = last + 1
	case ackOK:
		s.next = ack + 1
	default:
		s.next, ack = 1, 0
	}
	s.ack = ack
	s.deleteAckedLocked()
	s.rewindLocked()
	return nil
}

// scan reads sg, sets its last seq and size, and truncates it at the first
// torn or out-of-sequence record (normally only the last segment has one).
func (s *Spool) scan(sg *segment) error {
	f, err := os.OpenFile(sg.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool: open segment %s: %w", sg.path, err)
	}
	defer f.Close()
	var off int64
	want := sg.first
	for {
		rec, n, err := readRecord(f, off)
		if err == io.EOF {
			break
		}
		if err != nil || rec.Seq != want {
			// Torn or foreign bytes: everything from here on is unusable.
			s.torn++
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("spool: cut torn tail of %s: %w", sg.path, err)
			}
			break
		}
		off += n
		want++
	}
	sg.last = want - 1
	sg.size = off
	return nil
}

// readRecord reads the record at off. It returns io.EOF at a clean end and
// errTorn for a partial or corrupt record.
func readRecord(f *os.File, off int64) (Record, int64, error) {
	var h [headerLen]byte
	n, err := f.ReadAt(h[:], off)
	if n == 0 && err == io.EOF {
		return Record{}, 0, io.EOF
	}
	if n < headerLen {
		return Record{}, 0, errTorn
	}
	ln := binary.LittleEndian.Uint32(h[0:4])
	sum := binary.LittleEndian.Uint32(h[4:8])
	seq := binary.LittleEndian.Uint64(h[8:16])
	if ln == 0 || ln > 1<<30 {
		return Record{}, 0, errTorn
	}
	data := make([]byte, ln)
	if n, _ := f.ReadAt(data, off+headerLen); n < int(ln) {
		return Record{}, 0, errTorn
	}
	c := crc32.Update(0, castagnoli, h[8:16])
	c = crc32.Update(c, castagnoli, data)
	if c != sum {
		return Record{}, 0, errTorn
	}
	return Record{Seq: seq, Data: data}, headerLen + int64(ln), nil
}

var errTorn = errors.New("spool: torn record")

func (s *Spool) readAck() (uint64, bool, error) {
	p := filepath.Join(s.dir, ackName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, false, fmt.Errorf("spool: open ack file %s: %w", p, err)
	}
	s.ackF = f
	var b [ackFileLen]byte
	if n, _ := f.ReadAt(b[:], 0); n < ackFileLen {
		return 0, false, nil
	}
	seq := binary.LittleEndian.Uint64(b[0:8])
	if binary.LittleEndian.Uint32(b[8:12]) != crc32.Checksum(b[0:8], castagnoli) || string(b[12:16]) != "OSPA" {
		return 0, false, nil
	}
	return seq, true, nil
}

func (s *Spool) writeAckLocked() error {
	var b [ackFileLen]byte
	binary.LittleEndian.PutUint64(b[0:8], s.ack)
	binary.LittleEndian.PutUint32(b[8:12], crc32.Checksum(b[0:8], castagnoli))
	copy(b[12:], "OSPA")
	if _, err := s.ackF.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("spool: write ack file in %s: %w", s.dir, diskErr(err))
	}
	if s.opts.Sync == SyncAlways {
		if err := s.ackF.Sync(); err != nil {
			return fmt.Errorf("spool: sync ack file in %s: %w", s.dir, diskErr(err))
		}
	}
	return nil
}

// Append adds records at the tail and returns the sequence number of the last
// one. Once it returns nil the records are on disk (and fsynced under
// SyncAlways). To stay within MaxBytes it first drops the oldest segments,
// counting dropped unacknowledged records in DroppedTotal. A failed write (a
// full disk) is undone and returned wrapping ErrDiskFull or the OS error.
func (s *Spool) Append(recs ...[]byte) (uint64, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	var size int64
	for _, r := range recs {
		if len(r) == 0 {
			return 0, errors.New("spool: empty record")
		}
		size += headerLen + int64(len(r))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if size > s.opts.MaxBytes/2 {
		return 0, fmt.Errorf("%w (%d bytes, max_bytes %d)", ErrTooLarge, size, s.opts.MaxBytes)
	}
	if err := s.makeRoomLocked(size); err != nil {
		return 0, err
	}
	if err := s.ensureActiveLocked(); err != nil {
		return 0, err
	}
	buf := make([]byte, 0, size)
	seq := s.next
	for _, r := range recs {
		var h [headerLen]byte
		binary.LittleEndian.PutUint32(h[0:4], uint32(len(r)))
		binary.LittleEndian.PutUint64(h[8:16], seq)
		c := crc32.Update(0, castagnoli, h[8:16])
		binary.LittleEndian.PutUint32(h[4:8], crc32.Update(c, castagnoli, r))
		buf = append(buf, h[:]...)
		buf = append(buf, r...)
		seq++
	}
	sg := s.segs[len(s.segs)-1]
	if _, err := s.active.Write(buf); err != nil {
		// Undo a partial write so the segment stays well formed.
		_ = s.active.Truncate(sg.size)
		return 0, fmt.Errorf("spool: append to %s: %w", sg.path, diskErr(err))
	}
	if s.opts.Sync == SyncAlways {
		if err := s.active.Sync(); err != nil {
			return 0, fmt.Errorf("spool: sync %s: %w", sg.path, diskErr(err))
		}
	} else {
		s.dirty = true
	}
	sg.size += size
	s.total += size
	sg.last = seq - 1
	s.next = seq
	s.signal()
	return seq - 1, nil
}

func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the caller already names the file
		}
		return fmt.Errorf("%v (%w): free space on that disk or lower the spool's max_bytes", err, ErrDiskFull)
	}
	return err
}

// makeRoomLocked drops the oldest segments until size more bytes fit.
func (s *Spool) makeRoomLocked(size int64) error {
	for s.total+size > s.opts.MaxBytes && len(s.segs) > 0 {
		if len(s.segs) == 1 {
			// Only the active segment is left: start a new one so the old can go.
			if s.segs[0].size == 0 {
				return nil
			}
			if err := s.rollLocked(); err != nil {
				return err
			}
		}
		old := s.segs[0]
		if old.last >= old.first && old.last > s.ack {
			s.dropped += old.last - max(old.first, s.ack+1) + 1
		}
		if s.rSeg == 0 && s.rF != nil {
			s.rF.Close()
			s.rF = nil
		}
		if err := os.Remove(old.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spool: drop segment %s: %w", old.path, err)
		}
		s.total -= old.size
		s.segs = s.segs[1:]
		if old.last >= old.first && s.ack < old.last {
			s.ack = old.last
			if err := s.writeAckLocked(); err != nil {
				return err
			}
		}
		s.fixCursorLocked()
	}
	return nil
}

func (s *Spool) ensureActiveLocked() error {
	if n := len(s.segs); n > 0 && s.active != nil && s.segs[n-1].size < s.opts.SegmentBytes {
		return nil
	}
	if n := len(s.segs); n > 0 && s.active == nil && s.segs[n-1].size < s.opts.SegmentBytes {
		sg := s.segs[n-1]
		f, err := os.OpenFile(sg.path, os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("spool: open segment %s: %w", sg.path, err)
		}
		s.active = f
		return nil
	}
	return s.rollLocked()
}

// rollLocked closes the active segment and starts a new one at s.next.
func (s *Spool) rollLocked() error {
	if s.active != nil {
		if s.dirty {
			_ = s.active.Sync()
		}
		s.active.Close()
		s.active = nil
	}
	// An empty last segment is reused rather than leaving a gap in names.
	if n := len(s.segs); n > 0 && s.segs[n-1].size == 0 {
		sg := s.segs[n-1]
		_ = os.Remove(sg.path)
		s.segs = s.segs[:n-1]
	}
	p := filepath.Join(s.dir, fmt.Sprintf("%020d%s", s.next, segExt))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("spool: create segment %s: %w", p, diskErr(err))
	}
	if s.opts.Sync == SyncAlways {
		syncDir(s.dir)
	}
	s.active = f
	s.segs = append(s.segs, &segment{first: s.next, last: s.next - 1, path: p})
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Read returns up to maxN records from the read cursor on and advances it. It
// returns no records when the cursor has reached the tail; wait on Ready.
func (s *Spool) Read(maxN int) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var out []Record
	for len(out) < maxN && s.rSeq < s.next && s.rSeg < len(s.segs) {
		sg := s.segs[s.rSeg]
		if s.rSeq > sg.last {
			s.nextReadSegLocked()
			continue
		}
		if s.rF == nil {
			f, err := os.Open(sg.path)
			if err != nil {
				return out, fmt.Errorf("spool: open segment %s: %w", sg.path, err)
			}
			s.rF = f
		}
		rec, n, err := readRecord(s.rF, s.rOff)
		if err != nil {
			return out, fmt.Errorf("spool: read %s at %d: %w", sg.path, s.rOff, err)
		}
		s.rOff += n
		s.rSeq = rec.Seq + 1
		out = append(out, rec)
	}
	return out, nil
}

func (s *Spool) nextReadSegLocked() {
	if s.rF != nil {
		s.rF.Close()
		s.rF = nil
	}
	s.rSeg++
	s.rOff = 0
	if s.rSeg < len(s.segs) {
		s.rSeq = s.segs[s.rSeg].first
	}
}

// Rewind moves the read cursor back to the first unacknowledged record, so
// the records read since the last Ack are returned again.
func (s *Spool) Rewind() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.rewindLocked()
	}
}

func (s *Spool) rewindLocked() {
	if s.rF != nil {
		s.rF.Close()
		s.rF = nil
	}
	s.rSeq, s.rSeg, s.rOff = s.ack+1, 0, 0
	for s.rSeg < len(s.segs) && s.segs[s.rSeg].last < s.rSeq {
		s.rSeg++
	}
	if s.rSeg == len(s.segs) {
		s.rSeq = max(s.rSeq, s.next)
		return
	}
	sg := s.segs[s.rSeg]
	if s.rSeq <= sg.first {
		s.rSeq = sg.first
		return
	}
	// Skip the acknowledged records at the head of this segment.
	f, err := os.Open(sg.path)
	if err != nil {
		return
	}
	var off int64
	for seq := sg.first; seq < s.rSeq; seq++ {
		_, n, err := readRecord(f, off)
		if err != nil {
			break
		}
		off += n
	}
	s.rF, s.rOff = f, off
}

// Ack marks every record up to and including seq as delivered, persists the
// pointer and deletes segments that hold only delivered records.
func (s *Spool) Ack(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if seq <= s.ack {
		return nil
	}
	s.ack = min(seq, s.next-1)
	if err := s.writeAckLocked(); err != nil {
		return err
	}
	s.deleteAckedLocked()
	return nil
}

func (s *Spool) deleteAckedLocked() {
	for len(s.segs) > 1 && s.segs[0].last <= s.ack {
		old := s.segs[0]
		if s.rSeg == 0 && s.rF != nil {
			s.rF.Close()
			s.rF = nil
		}
		_ = os.Remove(old.path)
		s.total -= old.size
		s.segs = s.segs[1:]
		s.fixCursorLocked()
	}
}

// fixCursorLocked keeps the read cursor valid after segs[0] was removed. A
// cursor in the removed segment was at or before ack+1 (the segment was
// acknowledged or its records were dropped and the ack moved past them), so
// rewinding cannot return a record twice.
func (s *Spool) fixCursorLocked() {
	if s.rSeg > 0 {
		s.rSeg--
		return
	}
	s.rewindLocked()
}

// Ready returns a channel that receives a value when records were appended
// (or are pending at Open). It has capacity one: after receiving, call Read
// until it returns nothing.
func (s *Spool) Ready() <-chan struct{} { return s.ready }

func (s *Spool) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Pending returns the number of records not yet acknowledged.
func (s *Spool) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingLocked()
}

func (s *Spool) pendingLocked() int { return int(s.next - 1 - s.ack) }

// Bytes returns the bytes the spool's segments take on disk.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// DroppedTotal returns how many unacknowledged records were dropped to stay
// within MaxBytes since Open.
func (s *Spool) DroppedTotal() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// TornTotal returns how many torn or corrupt records Open cut off.
func (s *Spool) TornTotal() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.torn
}

// Dir returns the spool directory.
func (s *Spool) Dir() string { return s.dir }

// Sync flushes the active segment and the ack file to stable storage.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *Spool) syncLocked() error {
	if s.closed {
		return ErrClosed
	}
	if s.active != nil && s.dirty {
		if err := s.active.Sync(); err != nil {
			return fmt.Errorf("spool: sync %s: %w", s.dir, diskErr(err))
		}
	}
	s.dirty = false
	if err := s.ackF.Sync(); err != nil {
		return fmt.Errorf("spool: sync ack file in %s: %w", s.dir, diskErr(err))
	}
	return nil
}

func (s *Spool) syncLoop() {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if !s.closed && s.dirty {
				_ = s.syncLocked()
			}
			s.mu.Unlock()
		}
	}
}

// Close syncs and closes the files. It is safe to call twice.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	err := s.syncLocked()
	s.closed = true
	close(s.stop)
	s.closeFiles()
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Spool) closeFiles() {
	for _, f := range []*os.File{s.active, s.ackF, s.rF} {
		if f != nil {
			f.Close()
		}
	}
	s.active, s.ackF, s.rF = nil, nil, nil
}
