package record

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osprey-vision/osprey/capture"
)

// copyCodecs are the camera codecs recorded without re-encoding (ffprobe names).
var copyCodecs = map[string]bool{"h264": true, "hevc": true}

// settleLines is how many segment lines of a run wait for the anchor to
// settle before the first is indexed.
const settleLines = 3

// rtspTimeout is ffmpeg's socket timeout: a camera silent this long ends the
// child, and the supervisor restarts it.
const rtspTimeout = 10 * time.Second

// runCopy records the camera at raw by copying its stream with ffmpeg's
// segment muxer, restarting the child with back-off until the sink closes.
// A camera whose stream is not H.264/H.265 is encoded from its decoded frames
// instead.
func (r *recorder) runCopy(ctx context.Context, raw string) {
	red := capture.Redact(raw)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.s.res.StreamURL != nil {
		r.s.wg.Go(func() { r.watchURL(ctx, cancel, raw) })
	}
	backoff, probed := time.Second, false
	var lastEnd time.Time
	for ctx.Err() == nil {
		if !probed {
			codec, err := r.probe(ctx, raw)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				r.log.Warn("record: cannot read the camera's stream, retrying", "url", red, "err", err, "in", backoff)
			case !copyCodecs[codec]:
				r.log.Warn("record: the camera sends "+codec+", not H.264/H.265: recording re-encodes its decoded frames",
					"url", red, "codec", codec)
				r.encodeFrames()
				return
			default:
				probed = true
				continue
			}
		} else {
			if !hasRoom(r.s.cfg.Dir) {
				r.waitForRoom(ctx)
				continue
			}
			t0 := time.Now()
			end, err := r.runFFmpeg(ctx, raw, lastEnd)
			if !end.IsZero() {
				lastEnd = end
			}
			if ctx.Err() != nil {
				return
			}
			r.s.stats.restart(r.stream)
			r.s.stats.recording(r.stream, false)
			if time.Since(t0) > 30*time.Second {
				backoff = time.Second
			}
			if isNoSpaceText(err) {
				r.waitForRoom(ctx)
				continue
			}
			r.log.Warn("record: ffmpeg stopped; restarting", "url", red, "err", err, "in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// watchURL stops the copy when the pipeline's URL for the stream changes or
// the stream is removed (hot reload).
func (r *recorder) watchURL(ctx context.Context, stop context.CancelFunc, raw string) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if r.s.res.StreamURL(r.stream) != raw {
				r.log.Info("record: the stream was removed or its URL changed: its copy recorder stops", "url", capture.Redact(raw))
				stop()
				return
			}
		}
	}
}

// waitForRoom logs the full disk once and polls until space returns.
func (r *recorder) waitForRoom(ctx context.Context) {
	r.log.Error("record: disk full: recording of this stream stopped; it resumes when space is free (lower sinks.record.retain limits or free the disk)",
		"dir", r.s.cfg.Dir)
	r.s.stats.recording(r.stream, false)
	r.s.stats.diskFull(r.stream)
	for !hasRoom(r.s.cfg.Dir) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	r.log.Info("record: disk has space again: recording resumes")
}

// probe returns the codec of the camera's first video stream.
func (r *recorder) probe(ctx context.Context, raw string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*rtspTimeout)
	defer cancel()
	cmd := command(ctx, r.s.ffprobe, "-v", "error", "-rtsp_transport", "tcp",
		"-timeout", strconv.Itoa(int(rtspTimeout/time.Microsecond)),
		"-select_streams", "v:0", "-show_entries", "stream=codec_name", "-of", "default=nw=1:nk=1", raw)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ffprobe: %v: %s", err, lastLine(capture.Redact(stderr.String())))
	}
	codec := strings.TrimSpace(string(out))
	if codec == "" {
		return "", fmt.Errorf("ffprobe found no video stream")
	}
	return codec, nil
}

// runFFmpeg runs one ffmpeg child until it exits or ctx is done (then it is
// asked to finish its segment: SIGINT, then a kill after 5 s). Each finished
// segment ffmpeg lists on stdout goes into the ring. It returns the end of
// the last segment and why the child stopped.
func (r *recorder) runFFmpeg(ctx context.Context, raw string, lastEnd time.Time) (time.Time, error) {
	dir, err := r.s.ring.StreamDir(r.stream)
	if err != nil {
		return time.Time{}, err
	}
	run := strconv.FormatInt(time.Now().UnixMilli(), 10)
	pattern := filepath.Join(dir, "part-"+run+"-%06d.ts")
	cmd := command(ctx, r.s.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "warning",
		"-rtsp_transport", "tcp", "-timeout", strconv.Itoa(int(rtspTimeout/time.Microsecond)),
		"-fflags", "+genpts", "-i", raw, "-map", "0:v:0", "-c", "copy",
		"-f", "segment", "-segment_time", strconv.FormatFloat(r.s.cfg.Segment.Seconds(), 'f', 3, 64),
		"-segment_format", "mpegts", "-segment_list", "pipe:1", "-segment_list_type", "csv",
		pattern)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return time.Time{}, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return time.Time{}, err
	}
	if err := cmd.Start(); err != nil {
		return time.Time{}, fmt.Errorf("start %s: %w", r.s.ffmpeg, err)
	}
	r.child.Store(cmd.Process)
	defer r.child.Store(nil)
	sum := newStderrSummary(r, raw)
	var wg sync.WaitGroup
	wg.Go(func() { sum.read(stderr) })

	// ffmpeg lists a segment when the key frame that starts the next one
	// arrives: its arrival time ties the stream's clock to the wall clock.
	// The earliest anchor seen is the one with the least delay. The first
	// lines of a run come late (ffmpeg probes the stream before it writes,
	// then catches up), so the first few segments wait until the anchor has
	// settled before they are indexed.
	type listed struct {
		path   string
		st, en float64
	}
	var (
		anchor  time.Time
		end     = lastEnd
		held    []listed
		first   = true
		indexed bool
	)
	index := func(l listed) {
		start := anchor.Add(secs(l.st))
		if !end.IsZero() && start.Before(end) {
			start = end // never overlap the previous segment
		}
		if first && !lastEnd.IsZero() && start.After(lastEnd) {
			r.s.stats.gap(r.stream, start.Sub(lastEnd))
		}
		first = false
		if _, err := r.s.ring.Add(r.stream, l.path, start, secs(l.en-l.st)); err != nil {
			r.log.Warn("record: indexing a segment failed", "err", err)
			_ = os.Remove(l.path)
			return
		}
		end, indexed = start.Add(secs(l.en-l.st)), true
		r.s.stats.recording(r.stream, true)
		r.s.prune(time.Now())
	}
	flush := func() {
		for _, l := range held {
			index(l)
		}
		held = nil
	}
	rd := csv.NewReader(stdout)
	rd.FieldsPerRecord = 3
	for n := 0; ; n++ {
		rec, err := rd.Read()
		if err != nil {
			break
		}
		now := time.Now()
		st, err1 := strconv.ParseFloat(rec[1], 64)
		en, err2 := strconv.ParseFloat(rec[2], 64)
		path := rec[0]
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, filepath.Base(path))
		}
		if err1 != nil || err2 != nil || en < st {
			_ = os.Remove(path)
			continue
		}
		if a := now.Add(-secs(en)); anchor.IsZero() || a.Before(anchor) {
			anchor = a
		}
		held = append(held, listed{path, st, en})
		if n >= settleLines {
			flush()
		}
	}
	flush()
	if !indexed {
		end = time.Time{}
	}
	_, _ = io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	wg.Wait()
	if ps := cmd.ProcessState; ps != nil {
		r.s.stats.childCPU(r.stream, ps.UserTime()+ps.SystemTime())
	}
	// The segment being written when the child died was never listed: keep
	// what it holds, from the end of the last one.
	if !end.IsZero() {
		if e2 := r.salvage(dir, run, end); !e2.IsZero() {
			end = e2
		}
	}
	r.removeParts(dir, run)
	if werr == nil {
		werr = fmt.Errorf("ffmpeg exited")
	}
	return end, sum.err(werr)
}

// salvage adds the run's unlisted segment (ffmpeg killed mid-segment),
// starting at start, when ffprobe can read a duration from it.
func (r *recorder) salvage(dir, run string, start time.Time) time.Time {
	parts, _ := filepath.Glob(filepath.Join(dir, "part-"+run+"-*.ts"))
	for _, p := range parts {
		out, err := command(context.Background(), r.s.ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", p).Output()
		if err != nil {
			continue
		}
		d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil || d <= 0 {
			continue
		}
		if _, err := r.s.ring.Add(r.stream, p, start, secs(d)); err == nil {
			return start.Add(secs(d))
		}
	}
	return time.Time{}
}

// removeParts deletes what is left of a run's unlisted segments.
func (r *recorder) removeParts(dir, run string) {
	parts, _ := filepath.Glob(filepath.Join(dir, "part-"+run+"-*.ts"))
	for _, p := range parts {
		_ = os.Remove(p)
	}
}

// stderrSummary keeps ffmpeg's stderr short in the log: the first line of a
// run as a warning, then at most one line every 30 s with how many were
// held back; the URL's credentials are redacted everywhere.
type stderrSummary struct {
	r      *recorder
	raw    string
	mu     sync.Mutex
	lines  int
	last   string
	logged time.Time
	held   int
}

func newStderrSummary(r *recorder, raw string) *stderrSummary {
	return &stderrSummary{r: r, raw: raw}
}

func (s *stderrSummary) read(rd io.Reader) {
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		line := strings.TrimSpace(s.redact(sc.Text()))
		if line == "" {
			continue
		}
		s.mu.Lock()
		s.lines++
		s.last = line
		now := time.Now()
		switch {
		case benign(line):
			// The first packets of an RTSP stream carry no timestamps yet.
			s.r.log.Debug("record: ffmpeg says", "line", line)
		case now.Sub(s.logged) >= 30*time.Second:
			s.r.log.Warn("record: ffmpeg says", "line", line, "held_back", s.held)
			s.logged, s.held = now, 0
		default:
			s.held++
		}
		s.mu.Unlock()
	}
}

// redact hides the URL's credentials, also where ffmpeg quotes the URL
// partly decoded.
func (s *stderrSummary) redact(line string) string {
	line = strings.ReplaceAll(line, s.raw, capture.Redact(s.raw))
	return capture.Redact(line)
}

// err wraps the child's exit error with the last line it printed.
func (s *stderrSummary) err(werr error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lines == 0 {
		return werr
	}
	return fmt.Errorf("%w (%d lines on stderr, last: %s)", werr, s.lines, s.last)
}

// benign reports whether an ffmpeg line is one every RTSP copy prints at its
// start (timestamps not set on the first packets).
func benign(line string) bool {
	return strings.Contains(line, "Timestamps are unset in a packet") ||
		strings.Contains(line, "Non-monotonous DTS in output stream 0:0; previous: 0, current: 0")
}

func isNoSpaceText(err error) bool {
	return err != nil && strings.Contains(err.Error(), "No space left on device")
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
