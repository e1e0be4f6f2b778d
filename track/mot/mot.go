// Package mot reads and writes the MOTChallenge text format: one box per
// line, `frame,id,x,y,w,h,conf,...`, pixels, 1-based frames. Detection files
// (det.txt) have id -1; ground truth (gt.txt) uses the conf column as a flag
// (0: ignore the row); results (res.txt) carry the tracker's score.
//
// Every bad line is an error that names the file and line and says what is
// wrong; nothing in the input can make the reader panic.
package mot

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/osprey-vision/osprey/geom"
)

// Row is one line of a MOTChallenge file.
type Row struct {
	Frame int
	// ID is the object or track identity; -1 in detection files.
	ID  int64
	Box geom.Rect
	// Conf is column 7: the detector's or tracker's score, or in ground
	// truth the "consider" flag (0: ignored by the evaluation).
	Conf float64
	// Line is the 1-based line the row was read from.
	Line int
}

// Frame holds the rows of one frame, in file order.
type Frame struct {
	Number int
	Rows   []Row
}

// Order says how frames may be ordered in a file.
type Order int

const (
	// AnyOrder groups rows by frame whatever their order: ground truth of
	// later MOTChallenge editions is sorted by track, not frame.
	AnyOrder Order = iota
	// Sorted requires non-decreasing frame numbers (detections fed to a
	// tracker): a line whose frame is lower than the line before is an
	// error.
	Sorted
)

// minFields and maxFields bound a line's comma-separated fields: frame, id
// and the box are required; MOTChallenge files have 6 to 10 columns.
const (
	minFields = 6
	maxFields = 10
)

// Parse reads a MOTChallenge file from r; name (usually the path) prefixes
// error messages as name:line. It returns the frames in increasing order,
// each non-empty. Blank lines are skipped.
func Parse(r io.Reader, name string, order Order) ([]Frame, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	byFrame := map[int][]Row{}
	line, last := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		row, err := parseLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if order == Sorted && row.Frame < last {
			return nil, fmt.Errorf("%s:%d: frame %d comes after frame %d: detections must be sorted by frame (sort -t, -k1,1n -s)", name, line, row.Frame, last)
		}
		last = row.Frame
		row.Line = line
		byFrame[row.Frame] = append(byFrame[row.Frame], row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	frames := make([]Frame, 0, len(byFrame))
	for n, rows := range byFrame {
		frames = append(frames, Frame{Number: n, Rows: rows})
	}
	sort.Slice(frames, func(i, j int) bool { return frames[i].Number < frames[j].Number })
	return frames, nil
}

// ReadFile parses the file at path (see Parse).
func ReadFile(path string, order Order) ([]Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path, order)
}

var fieldNames = [...]string{"frame", "id", "x", "y", "w", "h", "conf"}

func parseLine(text string) (Row, error) {
	fields := strings.Split(text, ",")
	if len(fields) < minFields || len(fields) > maxFields {
		return Row{}, fmt.Errorf("want %d to %d comma-separated fields (frame,id,x,y,w,h[,conf,...]), got %d", minFields, maxFields, len(fields))
	}
	var v [7]float64
	v[6] = 1 // a file without the conf column counts every row
	for i := 0; i < len(fields) && i < len(v); i++ {
		s := strings.TrimSpace(fields[i])
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return Row{}, fmt.Errorf("field %d (%s): %q is not a number", i+1, fieldNames[i], s)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return Row{}, fmt.Errorf("field %d (%s): %s is not a finite number", i+1, fieldNames[i], s)
		}
		v[i] = f
	}
	frame, id := v[0], v[1]
	if frame != math.Trunc(frame) || frame < 1 || frame > math.MaxInt32 {
		return Row{}, fmt.Errorf("field 1 (frame): %v is not a frame number (an integer >= 1)", frame)
	}
	if id != math.Trunc(id) || math.Abs(id) > 1<<53 {
		return Row{}, fmt.Errorf("field 2 (id): %v is not an integer", id)
	}
	if v[4] <= 0 || v[5] <= 0 {
		return Row{}, fmt.Errorf("box size %vx%v: width and height must be positive", v[4], v[5])
	}
	return Row{Frame: int(frame), ID: int64(id), Box: geom.Rect{X: v[2], Y: v[3], W: v[4], H: v[5]}, Conf: v[6]}, nil
}

// DropIgnored removes the ground-truth rows flagged 0 (MOTChallenge 2015
// convention: not to be evaluated) and returns how many it removed. Frames
// left empty are removed too.
func DropIgnored(frames []Frame) ([]Frame, int) {
	dropped := 0
	out := frames[:0]
	for _, f := range frames {
		keep := f.Rows[:0]
		for _, r := range f.Rows {
			if r.Conf == 0 {
				dropped++
				continue
			}
			keep = append(keep, r)
		}
		if len(keep) > 0 {
			f.Rows = keep
			out = append(out, f)
		}
	}
	return out, dropped
}

// ErrDuplicateID reports two rows of one frame with the same ID.
var ErrDuplicateID = errors.New("mot: duplicate id in a frame")

// CheckUniqueIDs returns an error naming the first frame where an ID
// appears twice (results and ground truth need unique IDs per frame).
func CheckUniqueIDs(frames []Frame, name string) error {
	for _, f := range frames {
		seen := make(map[int64]int, len(f.Rows))
		for _, r := range f.Rows {
			if prev, ok := seen[r.ID]; ok {
				return fmt.Errorf("%s:%d: id %d already on line %d of frame %d: %w", name, r.Line, r.ID, prev, f.Number, ErrDuplicateID)
			}
			seen[r.ID] = r.Line
		}
	}
	return nil
}

// Writer writes tracker results, `frame,id,x,y,w,h,score,-1,-1,-1`.
type Writer struct {
	w   *bufio.Writer
	err error
}

// NewWriter returns a Writer on w; call Flush at the end.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriter(w)} }

// Write writes one result line.
func (w *Writer) Write(frame int, id uint64, b geom.Rect, score float64) {
	if w.err != nil {
		return
	}
	_, w.err = fmt.Fprintf(w.w, "%d,%d,%.2f,%.2f,%.2f,%.2f,%.4f,-1,-1,-1\n", frame, id, b.X, b.Y, b.W, b.H, score)
}

// Flush writes what is buffered and returns the first error of any Write.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	return w.w.Flush()
}
