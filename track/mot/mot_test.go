package mot

import (
	"bytes"
	"strings"
	"testing"

	"github.com/osprey-vision/osprey/geom"
)

func TestParse(t *testing.T) {
	in := "2,-1,10,20,30,40,0.9,-1,-1,-1\n\n1,-1,1.5,2,3,4,0.5,-1,-1,-1\n1,-1,5,6,7,8,0.7\n"
	frames, err := Parse(strings.NewReader(in), "det.txt", AnyOrder)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 2 || frames[0].Number != 1 || len(frames[0].Rows) != 2 || frames[1].Number != 2 {
		t.Fatalf("frames %+v", frames)
	}
	r := frames[0].Rows[0]
	if r.Box != (geom.Rect{X: 1.5, Y: 2, W: 3, H: 4}) || r.Conf != 0.5 || r.ID != -1 || r.Line != 3 {
		t.Fatalf("row %+v", r)
	}
	if _, err := Parse(strings.NewReader(in), "det.txt", Sorted); err == nil ||
		err.Error() != "det.txt:3: frame 1 comes after frame 2: detections must be sorted by frame (sort -t, -k1,1n -s)" {
		t.Fatalf("sorted: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, err string }{
		{"field count", "1,-1,2,3,4\n", "x.txt:1: want 6 to 10 comma-separated fields (frame,id,x,y,w,h[,conf,...]), got 5"},
		{"too many", "1,-1,2,3,4,5,1,1,1,1,1\n", "x.txt:1: want 6 to 10 comma-separated fields (frame,id,x,y,w,h[,conf,...]), got 11"},
		{"nan", "1,-1,2,3,4,5,1\n1,-1,NaN,3,4,5,1\n", "x.txt:2: field 3 (x): NaN is not a finite number"},
		{"inf", "1,-1,2,3,4,5,+Inf\n", "x.txt:1: field 7 (conf): +Inf is not a finite number"},
		{"text", "1,-1,2,a,4,5\n", `x.txt:1: field 4 (y): "a" is not a number`},
		{"negative size", "1,-1,2,3,-4,5\n", "x.txt:1: box size -4x5: width and height must be positive"},
		{"zero size", "1,-1,2,3,4,0\n", "x.txt:1: box size 4x0: width and height must be positive"},
		{"frame 0", "0,-1,2,3,4,5\n", "x.txt:1: field 1 (frame): 0 is not a frame number (an integer >= 1)"},
		{"fractional frame", "1.5,-1,2,3,4,5\n", "x.txt:1: field 1 (frame): 1.5 is not a frame number (an integer >= 1)"},
		{"fractional id", "1,2.5,2,3,4,5\n", "x.txt:1: field 2 (id): 2.5 is not an integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in), "x.txt", AnyOrder)
			if err == nil || err.Error() != tc.err {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestDropIgnoredAndUniqueIDs(t *testing.T) {
	frames, err := Parse(strings.NewReader("1,1,0,0,5,5,1\n1,2,0,0,5,5,0\n2,2,0,0,5,5,0\n2,1,0,0,5,5,1\n2,1,9,9,5,5,1\n"), "gt.txt", AnyOrder)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckUniqueIDs(frames, "gt.txt"); err == nil || err.Error() != "gt.txt:5: id 1 already on line 4 of frame 2: mot: duplicate id in a frame" {
		t.Fatalf("unique: %v", err)
	}
	kept, dropped := DropIgnored(frames)
	if dropped != 2 || len(kept) != 2 || len(kept[0].Rows) != 1 || len(kept[1].Rows) != 2 {
		t.Fatalf("dropped %d, kept %+v", dropped, kept)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Write(3, 7, geom.Rect{X: 1.234, Y: 5, W: 10, H: 20.5}, 0.98765)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "3,7,1.23,5.00,10.00,20.50,0.9877,-1,-1,-1\n" {
		t.Fatalf("wrote %q", got)
	}
	frames, err := Parse(&buf, "res.txt", Sorted)
	if err != nil || frames[0].Rows[0].ID != 7 || frames[0].Number != 3 {
		t.Fatalf("%v %+v", err, frames)
	}
}

// FuzzParse checks that no input panics, and that whatever parses has
// frames in increasing order with finite, positive-size boxes.
func FuzzParse(f *testing.F) {
	f.Add([]byte("1,-1,477.4,133.5,60.9,206.6,0.98,-1,-1,-1\n2,3,1,2,3,4,1\n"))
	f.Add([]byte("1,-1,2,3,-4,5\n"))
	f.Add([]byte("2,-1,2,3,4,5\n1,-1,2,3,4,5\n"))
	f.Add([]byte("1,-1,NaN,3,4,5,1\n"))
	f.Add([]byte("1e9,1e300,0x10,3,4,5,1,,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, order := range []Order{AnyOrder, Sorted} {
			frames, err := Parse(bytes.NewReader(data), "f", order)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "f:") {
					t.Fatalf("error without position: %v", err)
				}
				continue
			}
			prev := 0
			for _, fr := range frames {
				if fr.Number <= prev || len(fr.Rows) == 0 {
					t.Fatalf("frames out of order or empty: %+v", frames)
				}
				prev = fr.Number
				for _, r := range fr.Rows {
					if !(r.Box.W > 0 && r.Box.H > 0) || r.Frame != fr.Number {
						t.Fatalf("bad row %+v", r)
					}
				}
			}
			_ = CheckUniqueIDs(frames, "f")
			DropIgnored(frames)
		}
	})
}
