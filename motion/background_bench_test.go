package motion

import (
	"image"
	"testing"

	"gocv.io/x/gocv"
)

// BenchmarkBackgroundModels compares the running average Detect uses with
// OpenCV's MOG2 and KNN subtractors on the same 240x180 blurred grey frames:
// CPU per frame, and foreground pixels per frame on the idle scene (noise,
// drift; all false) and on vtest (people walking), after 20 warm-up frames.
func BenchmarkBackgroundModels(b *testing.B) {
	busy := vtestFrames(b, 120)
	idle := idleScene(b, busy[0], 120, -1)
	prep := func(frames []gocv.Mat) []gocv.Mat {
		out := make([]gocv.Mat, len(frames))
		grey, small := gocv.NewMat(), gocv.NewMat()
		defer grey.Close()
		defer small.Close()
		for i, f := range frames {
			gocv.CvtColor(f, &grey, gocv.ColorBGRToGray)
			gocv.Resize(grey, &small, image.Pt(240, 180), 0, 0, gocv.InterpolationArea)
			out[i] = gocv.NewMat()
			gocv.GaussianBlur(small, &out[i], image.Pt(blurSize, blurSize), 0, 0, gocv.BorderReplicate)
		}
		b.Cleanup(func() {
			for i := range out {
				out[i].Close()
			}
		})
		return out
	}
	busy, idle = prep(busy), prep(idle)

	type model struct {
		apply func(src gocv.Mat, fg *gocv.Mat)
		close func()
	}
	models := map[string]func() model{
		"running_average": func() model {
			bg, bg8, diff := gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
			return model{
				apply: func(src gocv.Mat, fg *gocv.Mat) {
					if bg.Empty() {
						src.ConvertTo(&bg, gocv.MatTypeCV32F)
					}
					bg.ConvertTo(&bg8, gocv.MatTypeCV8U)
					gocv.AbsDiff(src, bg8, &diff)
					gocv.Threshold(diff, fg, 25, 255, gocv.ThresholdBinary)
					gocv.AccumulatedWeighted(src, &bg, 0.05)
				},
				close: func() { bg.Close(); bg8.Close(); diff.Close() },
			}
		},
		"mog2": func() model {
			s := gocv.NewBackgroundSubtractorMOG2()
			return model{apply: func(src gocv.Mat, fg *gocv.Mat) { s.Apply(src, fg) }, close: func() { s.Close() }}
		},
		"knn": func() model {
			s := gocv.NewBackgroundSubtractorKNN()
			return model{apply: func(src gocv.Mat, fg *gocv.Mat) { s.Apply(src, fg) }, close: func() { s.Close() }}
		},
	}
	for _, name := range []string{"running_average", "mog2", "knn"} {
		b.Run(name, func(b *testing.B) {
			fg := gocv.NewMat()
			defer fg.Close()
			// Foreground pixels (MOG2/KNN mark shadows 127: counted too).
			count := func(frames []gocv.Mat) float64 {
				m := models[name]()
				defer m.close()
				n := 0
				for i, f := range frames {
					m.apply(f, &fg)
					if i >= 20 {
						n += gocv.CountNonZero(fg)
					}
				}
				return float64(n) / float64(len(frames)-20)
			}
			idleFP, busyFG := count(idle), count(busy)
			m := models[name]()
			defer m.close()
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for i := 0; i < b.N; i++ {
				m.apply(busy[i%len(busy)], &fg)
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/1e6/float64(b.N), "cpu-ms/frame")
			b.ReportMetric(idleFP, "idle-fg-px/frame")
			b.ReportMetric(busyFG, "busy-fg-px/frame")
		})
	}
}
