package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/osprey-vision/osprey/track"
	"github.com/osprey-vision/osprey/track/eval"
	"github.com/osprey-vision/osprey/track/mot"
)

// cmdTrack runs Osprey's tracker on MOTChallenge detections and writes
// MOTChallenge results; `pipeline track eval` scores results against
// ground truth. By default the results are the offline output (the whole
// sequence is tracked first, then each track smoothed: mot.Options.Smooth);
// --live writes what the pipeline reports live instead.
//
//	pipeline track --det det.txt --fps F [--config pipeline.yaml] [--live [--delay D]] [--min-streak K] --out res.txt
//	pipeline track eval --gt gt.txt --res res.txt [--gt ... --res ...] [--json]
func cmdTrack(_ context.Context, args []string) int {
	if len(args) > 0 && args[0] == "eval" {
		return cmdTrackEval(args[1:], os.Stdout)
	}
	fs := flag.NewFlagSet("track", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	det := fs.String("det", "", "MOTChallenge detections (frame,-1,x,y,w,h,score,...), sorted by frame")
	fps := fs.Float64("fps", 0, "the sequence's frame rate (frame n is at (n-1)/fps seconds)")
	cfgPath := fs.String("config", "", "pipeline YAML whose track: section configures the tracker (default: the built-in defaults)")
	out := fs.String("out", "", "results file to write (frame,id,x,y,w,h,score,-1,-1,-1); - for stdout")
	live := fs.Bool("live", false, "write what the pipeline reports live (the confirmed tracks matched on each frame, as they are then) instead of the offline output (every track smoothed over the whole sequence, its first frames and bridged gaps included)")
	delay := fs.Duration("delay", 0, "with --live: wait this long before committing a frame, to report tracks' first frames once confirmed and fill gaps closed within it (0: no lag)")
	streak := fs.Int("min-streak", 0, "report a track only once matched on this many consecutive frames (0: the tracker's confirmation)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pipeline track --det det.txt --fps F [--config pipeline.yaml] [--live [--delay D]] [--min-streak K] --out res.txt\n       pipeline track eval --gt gt.txt --res res.txt [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *det == "" || *out == "" || *fps <= 0 || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if *delay < 0 || *streak < 0 {
		fmt.Fprintf(os.Stderr, "pipeline track: --delay and --min-streak must be >= 0, got %v and %d\n", *delay, *streak)
		return 2
	}
	if *delay > 0 && !*live {
		fmt.Fprintf(os.Stderr, "pipeline track: --delay %v is the live output's lag: add --live (the default offline output already sees the whole sequence)\n", *delay)
		return 2
	}
	if err := runTrack(*det, *fps, *cfgPath, *out, mot.Options{Delay: *delay, MinStreak: *streak, Smooth: !*live}); err != nil {
		fmt.Fprintf(os.Stderr, "pipeline track: %v\n", err)
		return 1
	}
	return 0
}

// trackConfig returns the tracker settings: the defaults, or the track:
// section of a pipeline file (loaded and validated whole, as `pipeline run`
// would).
func trackConfig(path string) (track.Config, error) {
	if path == "" {
		return track.DefaultConfig(), nil
	}
	p, err := loadPipeline(path)
	if err != nil {
		return track.Config{}, err
	}
	tc, err := trackSection(p)
	if err != nil {
		return track.Config{}, err
	}
	return tc.Track, nil
}

func runTrack(detPath string, fps float64, cfgPath, outPath string, opts mot.Options) error {
	cfg, err := trackConfig(cfgPath)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	frames, err := mot.ReadFile(detPath, mot.Sorted)
	if err != nil {
		return err
	}
	res, err := mot.RunWith(frames, fps, cfg, opts)
	if err != nil {
		return err
	}
	if outPath == "-" {
		return writeResults(os.Stdout, res)
	}
	f, err := os.Create(outPath)
	if err != nil {
		return err
	}
	if err := writeResults(f, res); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", outPath, err)
	}
	return f.Close()
}

func writeResults(w io.Writer, res []mot.Result) error {
	mw := mot.NewWriter(w)
	for _, r := range res {
		mw.Write(r.Frame, r.Track.ID, r.Track.Box, r.Track.Score)
	}
	return mw.Flush()
}

// pathList is a repeatable string flag.
type pathList []string

func (p *pathList) String() string     { return strings.Join(*p, ",") }
func (p *pathList) Set(v string) error { *p = append(*p, v); return nil }

// seqMetrics is one row of `pipeline track eval --json`.
type seqMetrics struct {
	Name      string  `json:"name"`
	GT        string  `json:"gt,omitempty"`
	Res       string  `json:"res,omitempty"`
	Frames    int     `json:"frames"`
	GTBoxes   int     `json:"gt_boxes"`
	IgnoredGT int     `json:"ignored_gt"`
	ResBoxes  int     `json:"res_boxes"`
	MOTA      float64 `json:"mota"`
	MOTP      float64 `json:"motp"`
	FP        int     `json:"fp"`
	FN        int     `json:"fn"`
	IDSW      int     `json:"idsw"`
	Frag      int     `json:"frag"`
	IDF1      float64 `json:"idf1"`
	IDP       float64 `json:"idp"`
	IDR       float64 `json:"idr"`
	HOTA      float64 `json:"hota"`
	DetA      float64 `json:"deta"`
	AssA      float64 `json:"assa"`
	LocA      float64 `json:"loca"`
	result    eval.Result
	ignored   int
}

func newSeqMetrics(name string, r eval.Result, ignored int) seqMetrics {
	return seqMetrics{
		Name: name, Frames: r.Frames, GTBoxes: r.GT, IgnoredGT: ignored, ResBoxes: r.Hyp,
		MOTA: r.MOTA, MOTP: r.MOTP, FP: r.FP, FN: r.FN, IDSW: r.IDSwitches, Frag: r.Fragmentations,
		IDF1: r.IDF1, IDP: r.IDP, IDR: r.IDR, HOTA: r.HOTA, DetA: r.DetA, AssA: r.AssA, LocA: r.LocA,
		result: r, ignored: ignored,
	}
}

// cmdTrackEval scores one or more result files against their ground truth
// (pairs of --gt and --res, in order) at IoU 0.5, the MOTChallenge way:
// ground-truth rows flagged 0 are dropped first.
func cmdTrackEval(args []string, stdout io.Writer) int {
	var gts, ress pathList
	fs := flag.NewFlagSet("track eval", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Var(&gts, "gt", "ground truth (frame,id,x,y,w,h,flag,...); repeat with --res for several sequences")
	fs.Var(&ress, "res", "tracker results (frame,id,x,y,w,h,score,...), one per --gt")
	asJSON := fs.Bool("json", false, "print JSON: {sequences: [...], combined: {...}}")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pipeline track eval --gt gt.txt --res res.txt [--gt gt2.txt --res res2.txt ...] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(gts) == 0 || len(gts) != len(ress) || fs.NArg() > 0 {
		if len(gts) != len(ress) {
			fmt.Fprintf(os.Stderr, "pipeline track eval: %d --gt for %d --res: give them in pairs\n", len(gts), len(ress))
		}
		fs.Usage()
		return 2
	}
	var rows []seqMetrics
	var errs []error
	for i := range gts {
		r, ignored, err := evalPair(gts[i], ress[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m := newSeqMetrics(sequenceName(gts[i]), r, ignored)
		m.GT, m.Res = gts[i], ress[i]
		rows = append(rows, m)
	}
	if len(errs) > 0 {
		fmt.Fprintf(os.Stderr, "pipeline track eval: %v\n", errors.Join(errs...))
		return 1
	}
	results := make([]eval.Result, len(rows))
	ignored := 0
	for i, r := range rows {
		results[i] = r.result
		ignored += r.ignored
	}
	combined := newSeqMetrics("combined", eval.Combine(results...), ignored)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Sequences []seqMetrics `json:"sequences"`
			Combined  seqMetrics   `json:"combined"`
		}{rows, combined}); err != nil {
			fmt.Fprintf(os.Stderr, "pipeline track eval: %v\n", err)
			return 1
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "sequence\tMOTA\tMOTP\tIDF1\tIDP\tIDR\tHOTA\tDetA\tAssA\tFP\tFN\tIDSW\tFrag\tGT\t")
	if len(rows) > 1 {
		rows = append(rows, combined)
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%d\t%d\t%d\t%d\t\n",
			r.Name, r.MOTA, r.MOTP, r.IDF1, r.IDP, r.IDR, r.HOTA, r.DetA, r.AssA, r.FP, r.FN, r.IDSW, r.Frag, r.GTBoxes)
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}

// evalPair reads one ground truth and one result file and scores them.
func evalPair(gtPath, resPath string) (eval.Result, int, error) {
	gt, err := mot.ReadFile(gtPath, mot.AnyOrder)
	if err != nil {
		return eval.Result{}, 0, err
	}
	gt, ignored := mot.DropIgnored(gt)
	res, err := mot.ReadFile(resPath, mot.AnyOrder)
	if err != nil {
		return eval.Result{}, 0, err
	}
	for _, c := range []struct {
		frames []mot.Frame
		path   string
	}{{gt, gtPath}, {res, resPath}} {
		if err := mot.CheckUniqueIDs(c.frames, c.path); err != nil {
			return eval.Result{}, 0, err
		}
	}
	return eval.Evaluate(eval.FromMOT(gt, res), 0.5), ignored, nil
}

// sequenceName names a sequence after its ground-truth path: SEQ for
// SEQ/gt/gt.txt (the MOTChallenge layout) or SEQ/gt.txt, else the file
// name without its extension.
func sequenceName(gtPath string) string {
	dir, base := filepath.Split(filepath.Clean(gtPath))
	dir = filepath.Clean(dir)
	if base == "gt.txt" && dir != "." {
		if filepath.Base(dir) == "gt" && filepath.Dir(dir) != "." {
			return filepath.Base(filepath.Dir(dir))
		}
		return filepath.Base(dir)
	}
	return strings.TrimSuffix(base, filepath.Ext(base))
}
