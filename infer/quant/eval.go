package quant

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/infer"
)

// EvalConfig says which variant to compare against which FP32 parent, on
// which frames.
type EvalConfig struct {
	Ref, Model string // FP32 parent and variant model files
	Format     string // infer model format, e.g. "ssd"
	Frames     string // video file or image folder
	Skip, N    int    // skip the calibration frames, then use N frames
	// Confidence is the detection threshold for precision/recall and for
	// the reference detections used as ground truth (default 0.5).
	Confidence float32
	// IoU is the match threshold (default 0.5).
	IoU float64
	// Threads per detector (0: ONNX Runtime's default).
	Threads int
	// Classes limits both models to these labels (detect.classes); empty:
	// every class.
	Classes []string
	// MinRef is the fewest reference detections a class needs to count in
	// MAP50 (default 10): the mean is over classes, so a class the parent
	// found three times would weigh as much as one it found 700 times.
	MinRef int
}

// EvalResult is the variant's agreement with its parent.
type EvalResult struct {
	Frames            int     `json:"frames"`
	RefDetections     int     `json:"ref_detections"`
	VariantDetections int     `json:"variant_detections"`
	Matched           int     `json:"matched"`
	Precision         float64 `json:"precision"`
	Recall            float64 `json:"recall"`
	MeanScoreDiff     float64 `json:"mean_abs_score_diff"`
	// MAP50 is the mean AP over the classes with at least MinRef reference
	// detections; MAP50All over every class the reference found.
	MAP50    float64 `json:"map50"`
	MAP50All float64 `json:"map50_all_classes"`
	MinRef   int     `json:"min_ref_detections"`
	// Classes is the AP of each class the reference found, most found first.
	Classes       []ClassAP `json:"classes"`
	RefMeanMs     float64   `json:"ref_mean_ms"`
	VariantMeanMs float64   `json:"variant_mean_ms"`
}

// settle is the untimed pause between the two models' runs.
const settle = 10 * time.Millisecond

// apFloor is the lowest variant score ranked for mAP.
const apFloor = 0.05

// Evaluate runs both models on the same frames and scores the variant with
// the parent's detections (at cfg.Confidence) as ground truth.
func Evaluate(cfg EvalConfig, log *slog.Logger) (EvalResult, error) {
	log = quiet(log)
	if cfg.Confidence == 0 {
		cfg.Confidence = 0.5
	}
	if cfg.IoU == 0 {
		cfg.IoU = 0.5
	}
	if cfg.N <= 0 {
		cfg.N = 100
	}
	if cfg.MinRef <= 0 {
		cfg.MinRef = 10
	}
	ref, err := infer.Open(infer.Config{Path: cfg.Ref, Format: cfg.Format, Threads: cfg.Threads, Confidence: cfg.Confidence, Classes: cfg.Classes, Providers: []string{"cpu"}}, log)
	if err != nil {
		return EvalResult{}, fmt.Errorf("quant: reference model: %w", err)
	}
	defer ref.Close()
	variant, err := infer.Open(infer.Config{Path: cfg.Model, Format: cfg.Format, Threads: cfg.Threads, Confidence: apFloor, Classes: cfg.Classes, Providers: []string{"cpu"}}, log)
	if err != nil {
		return EvalResult{}, fmt.Errorf("quant: variant model: %w", err)
	}
	defer variant.Close()

	var res EvalResult
	var ranked []scored // all variant detections >= apFloor, for AP
	gtPerClass := map[int]int{}
	var diffSum float64
	var refTime, varTime time.Duration
	err = EachFrame(cfg.Frames, cfg.Skip, cfg.N, func(img gocv.Mat) error {
		// ONNX Runtime's pool threads spin for a while after a run; let
		// them idle so one model's spin is not timed as the other's work.
		time.Sleep(settle)
		t0 := time.Now()
		gt, err := ref.DetectImage(img)
		if err != nil {
			return err
		}
		refTime += time.Since(t0)
		time.Sleep(settle)
		t1 := time.Now()
		all, err := variant.DetectImage(img)
		if err != nil {
			return err
		}
		varTime += time.Since(t1)
		res.Frames++
		res.RefDetections += len(gt)
		for _, d := range gt {
			gtPerClass[d.ClassID]++
		}
		var kept []infer.Detection
		for _, d := range all {
			if d.Confidence >= cfg.Confidence {
				kept = append(kept, d)
			}
		}
		res.VariantDetections += len(kept)
		for _, m := range Match(gt, kept, cfg.IoU) {
			res.Matched++
			diffSum += math.Abs(float64(gt[m.Ref].Confidence - kept[m.Variant].Confidence))
		}
		matched := map[int]bool{}
		for _, m := range Match(gt, all, cfg.IoU) {
			matched[m.Variant] = true
		}
		for i, d := range all {
			ranked = append(ranked, scored{class: d.ClassID, score: d.Confidence, tp: matched[i]})
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Precision = ratio(res.Matched, res.VariantDetections)
	res.Recall = ratio(res.Matched, res.RefDetections)
	if res.Matched > 0 {
		res.MeanScoreDiff = diffSum / float64(res.Matched)
	}
	aps := classAPs(ranked, gtPerClass)
	res.MAP50All = meanAP(aps)
	res.MinRef = cfg.MinRef
	counted := map[int]float64{}
	for class, ap := range aps {
		if gtPerClass[class] >= cfg.MinRef {
			counted[class] = ap
		}
	}
	res.MAP50 = meanAP(counted)
	for class, ap := range aps {
		res.Classes = append(res.Classes, ClassAP{Label: ref.Labels()[class], Ref: gtPerClass[class], AP: ap})
	}
	slices.SortFunc(res.Classes, func(a, b ClassAP) int { return cmp.Or(b.Ref-a.Ref, cmp.Compare(a.Label, b.Label)) })
	res.RefMeanMs = float64(refTime.Microseconds()) / 1000 / float64(res.Frames)
	res.VariantMeanMs = float64(varTime.Microseconds()) / 1000 / float64(res.Frames)
	return res, nil
}

// ratio is a/b, or 1 when both are 0 (nothing to find and nothing found).
func ratio(a, b int) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return 0
	}
	return float64(a) / float64(b)
}

// Pair links a reference detection to a variant detection.
type Pair struct{ Ref, Variant int }

// Match pairs variant detections with reference detections of the same
// class, greedily by descending variant confidence, each to the unmatched
// reference box it overlaps most (IoU >= minIoU).
func Match(ref, variant []infer.Detection, minIoU float64) []Pair {
	order := make([]int, len(variant))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(variant[b].Confidence, variant[a].Confidence) })
	used := make([]bool, len(ref))
	var out []Pair
	for _, v := range order {
		best, bestIoU := -1, minIoU
		for r := range ref {
			if used[r] || ref[r].ClassID != variant[v].ClassID {
				continue
			}
			if iou := ref[r].Box.IoU(variant[v].Box); iou >= bestIoU {
				best, bestIoU = r, iou
			}
		}
		if best >= 0 {
			used[best] = true
			out = append(out, Pair{Ref: best, Variant: v})
		}
	}
	return out
}

// ClassAP is one class's average precision against the reference.
type ClassAP struct {
	Label string  `json:"label"`
	Ref   int     `json:"ref_detections"`
	AP    float64 `json:"ap50"`
}

type scored struct {
	class int
	score float32
	tp    bool
}

// meanAP averages the classes' APs (1 when the reference found nothing).
func meanAP(aps map[int]float64) float64 {
	if len(aps) == 0 {
		return 1
	}
	var sum float64
	for _, ap := range aps {
		sum += ap
	}
	return sum / float64(len(aps))
}

// classAPs returns, for each class present in the ground truth, the area
// under the all-point-interpolated precision/recall curve.
func classAPs(dets []scored, gt map[int]int) map[int]float64 {
	out := make(map[int]float64, len(gt))
	for class, npos := range gt {
		var ds []scored
		for _, d := range dets {
			if d.class == class {
				ds = append(ds, d)
			}
		}
		slices.SortStableFunc(ds, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
		prec := make([]float64, len(ds))
		rec := make([]float64, len(ds))
		tp := 0
		for i, d := range ds {
			if d.tp {
				tp++
			}
			prec[i] = float64(tp) / float64(i+1)
			rec[i] = float64(tp) / float64(npos)
		}
		// Precision envelope, then sum precision over recall steps.
		for i := len(prec) - 2; i >= 0; i-- {
			prec[i] = max(prec[i], prec[i+1])
		}
		var ap, lastR float64
		for i := range ds {
			if rec[i] > lastR {
				ap += (rec[i] - lastR) * prec[i]
				lastR = rec[i]
			}
		}
		out[class] = ap
	}
	return out
}
