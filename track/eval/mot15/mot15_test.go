package mot15

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/track"
	"github.com/osprey-vision/osprey/track/eval"
	sortbase "github.com/osprey-vision/osprey/track/eval/internal/sort"
	"github.com/osprey-vision/osprey/track/mot"
)

var (
	run    = flag.Bool("mot15", false, "run the tracker and SORT on the MOT15 development sequences")
	over   = flag.String("mot15.config", "", `settings over DefaultConfig for TestDevSet, a JSON object with the Config field names (e.g. {"CameraMotion":true}); the targets are then checked on that setting`)
	delay  = flag.Duration("mot15.delay", 0, "with TestDevSet: the writer's fixed lag (mot.Options.Delay; 0: what the pipeline reports live)")
	streak = flag.Int("mot15.streak", 0, "with TestDevSet: report a track only once matched on this many consecutive frames (mot.Options.MinStreak; 0: off)")
	dir    = flag.String("mot15.dir", "../../../../shared/data/mot15-dev", "directory holding KITTI-17, TUD-Stadtmitte, ETH-Sunnyday (det.txt, gt.txt, seqinfo.ini)")
)

// Sequences are the development sequences, in report order.
var Sequences = []string{"KITTI-17", "TUD-Stadtmitte", "ETH-Sunnyday"}

type sequence struct {
	name string
	fps  float64
	det  []mot.Frame
	gt   []mot.Frame
}

// load reads a sequence; it fails the test (never skips) when the data is
// missing, since the caller opted in.
func load(t testing.TB, name string) sequence {
	t.Helper()
	d := filepath.Join(*dir, name)
	s := sequence{name: name}
	ini, err := os.ReadFile(filepath.Join(d, "seqinfo.ini"))
	if err != nil {
		t.Fatalf("%v (the MOT15 development set goes in ../shared/data/mot15-dev, or pass -mot15.dir)", err)
	}
	for _, l := range strings.Split(string(ini), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "frameRate="); ok {
			s.fps, err = strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: frameRate %q: %v", d, v, err)
			}
		}
	}
	if s.fps <= 0 {
		t.Fatalf("%s/seqinfo.ini: no frameRate", d)
	}
	if s.det, err = mot.ReadFile(filepath.Join(d, "det.txt"), mot.Sorted); err != nil {
		t.Fatal(err)
	}
	if s.gt, err = mot.ReadFile(filepath.Join(d, "gt.txt"), mot.AnyOrder); err != nil {
		t.Fatal(err)
	}
	s.gt, _ = mot.DropIgnored(s.gt)
	return s
}

// runOsprey tracks s with cfg, reports what the pipeline reports live
// (or what -mot15.delay and -mot15.streak ask for) and scores it.
func runOsprey(t testing.TB, s sequence, cfg track.Config) eval.Result {
	return runOspreyWith(t, s, cfg, mot.Options{Delay: *delay, MinStreak: *streak})
}

// runOspreyWith is runOsprey with the writer's options.
func runOspreyWith(t testing.TB, s sequence, cfg track.Config, opts mot.Options) eval.Result {
	res, err := mot.RunWith(s.det, s.fps, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return eval.Evaluate(eval.FromMOT(s.gt, resultFrames(res)), 0.5)
}

func resultFrames(res []mot.Result) []mot.Frame {
	var out []mot.Frame
	for _, r := range res {
		if len(out) == 0 || out[len(out)-1].Number != r.Frame {
			out = append(out, mot.Frame{Number: r.Frame})
		}
		f := &out[len(out)-1]
		f.Rows = append(f.Rows, mot.Row{Frame: r.Frame, ID: int64(r.Track.ID), Box: r.Track.Box, Conf: r.Track.Score})
	}
	return out
}

// runSORT tracks s with the SORT baseline and scores it.
func runSORT(s sequence) eval.Result {
	return eval.Evaluate(eval.FromMOT(s.gt, sortFrames(s)), 0.5)
}

// sortFrames tracks s with the SORT baseline.
func sortFrames(s sequence) []mot.Frame {
	tr := sortbase.New(sortbase.DefaultConfig())
	var res []mot.Frame
	last := s.det[len(s.det)-1].Number
	next := 0
	for n := 1; n <= last; n++ {
		var dets []geom.Rect
		if next < len(s.det) && s.det[next].Number == n {
			for _, r := range s.det[next].Rows {
				dets = append(dets, r.Box)
			}
			next++
		}
		f := mot.Frame{Number: n}
		for _, b := range tr.Update(dets) {
			f.Rows = append(f.Rows, mot.Row{Frame: n, ID: int64(b.ID), Box: b.Box, Conf: 1})
		}
		if len(f.Rows) > 0 {
			res = append(res, f)
		}
	}
	return res
}

func row(name string, r eval.Result) string {
	return fmt.Sprintf("| %s | %.3f | %.3f | %.3f | %.3f | %d | %d | %d | %d |", name, r.MOTA, r.IDF1, r.HOTA, r.MOTP, r.FP, r.FN, r.IDSwitches, r.Fragmentations)
}

// TestDevSet runs Osprey's default tracker and SORT on the three
// sequences, with both writers: the offline output `pipeline track` writes
// by default (mot.Options.Smooth) and what the pipeline reports live (or
// the lag writer -mot15.delay and -mot15.streak ask for). It holds the
// offline output to issue 14's targets (mean MOTA at least SORT's + 0.03,
// mean IDF1 at least SORT's + 0.04, fewer ID switches) and the live output
// to a regression floor (MOTA SORT + 0.015, IDF1 SORT + 0.04, fewer ID
// switches): the live tracker alone is +0.016 (docs/tracking.md).
func TestDevSet(t *testing.T) {
	if !*run {
		t.Skip("pass -mot15 to evaluate on the MOT15 development sequences")
	}
	cfg := track.DefaultConfig()
	if *over != "" {
		if err := json.Unmarshal([]byte(*over), &cfg); err != nil {
			t.Fatalf("-mot15.config: %v", err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("-mot15.config: %v", err)
		}
		t.Logf("settings: DefaultConfig with %s", *over)
	}
	live := "live"
	if *delay > 0 || *streak > 0 {
		live = fmt.Sprintf("lag %v streak %d", *delay, *streak)
	}
	writers := []struct {
		name         string
		opts         mot.Options
		mota, idf1   float64
		sw           int
		res          []eval.Result
		motaMin, why string
	}{
		{name: "offline", opts: mot.Options{Smooth: true}},
		{name: live, opts: mot.Options{Delay: *delay, MinStreak: *streak}},
	}
	var sortMOTA, sortIDF1 float64
	var sortSW int
	var theirs []eval.Result
	t.Log("| sequence | tracker | MOTA | IDF1 | HOTA | MOTP | FP | FN | IDSW | Frag |")
	for _, name := range Sequences {
		s := load(t, name)
		for i := range writers {
			w := &writers[i]
			o := runOspreyWith(t, s, cfg, w.opts)
			w.res = append(w.res, o)
			w.mota += o.MOTA / 3
			w.idf1 += o.IDF1 / 3
			w.sw += o.IDSwitches
			t.Log(row(name+" | osprey "+w.name, o))
		}
		b := runSORT(s)
		theirs = append(theirs, b)
		t.Log(row(name+" | SORT", b))
		sortMOTA += b.MOTA / 3
		sortIDF1 += b.IDF1 / 3
		sortSW += b.IDSwitches
	}
	for _, w := range writers {
		t.Log(row("combined | osprey "+w.name, eval.Combine(w.res...)))
	}
	t.Log(row("combined | SORT", eval.Combine(theirs...)))
	for i, w := range writers {
		t.Logf("%s: mean MOTA osprey %.4f SORT %.4f (%+.4f); mean IDF1 osprey %.3f SORT %.3f (%+.3f); IDSW osprey %d SORT %d",
			w.name, w.mota, sortMOTA, w.mota-sortMOTA, w.idf1, sortIDF1, w.idf1-sortIDF1, w.sw, sortSW)
		want := 0.03 // issue 14's target, for the offline output
		if i > 0 {
			want = 0.015 // the live output's regression floor
		}
		if w.mota < sortMOTA+want {
			t.Errorf("%s: mean MOTA %.4f, want >= SORT + %.3f = %.4f", w.name, w.mota, want, sortMOTA+want)
		}
		if w.idf1 < sortIDF1+0.04 {
			t.Errorf("%s: mean IDF1 %.3f, want >= SORT + 0.04 = %.3f", w.name, w.idf1, sortIDF1+0.04)
		}
		if w.sw >= sortSW {
			t.Errorf("%s: %d ID switches, want fewer than SORT's %d", w.name, w.sw, sortSW)
		}
	}
}
