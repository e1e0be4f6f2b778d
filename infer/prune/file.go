package prune

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/quant"
)

// FileConfig is one `pipeline model prune` run.
type FileConfig struct {
	Model, Out string
	// Format is the infer model format; its preprocessing prepares the
	// calibration frames exactly as the pipeline will.
	Format string
	// Calib is a video file or an image folder; Frames how many of its
	// first frames to use (default 32).
	Calib  string
	Frames int
	Options
}

// PruneFile reads cfg.Model, prunes it on cfg.Calib and writes cfg.Out.
// Options, the model and whether it has a prunable Conv are checked before
// the calibration frames are read.
func PruneFile(cfg FileConfig, log *slog.Logger) (Report, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if cfg.Out == "" {
		return Report{}, fmt.Errorf("%w: --out is empty: give the file to write", ErrOptions)
	}
	if cfg.Calib == "" {
		return Report{}, fmt.Errorf("%w: --calib is empty: give a video or an image folder whose frames the refit runs on", ErrOptions)
	}
	m, err := quant.LoadModel(cfg.Model)
	if err != nil {
		return Report{}, err
	}
	if _, err := Plan(m, cfg.Options); err != nil {
		return Report{}, fmt.Errorf("%w (model %s)", err, cfg.Model)
	}
	if cfg.Frames <= 0 {
		cfg.Frames = 32
	}
	shape, err := quant.InputShape(m)
	if err != nil {
		return Report{}, err
	}
	det, err := infer.Open(infer.Config{Path: cfg.Model, Format: cfg.Format, Providers: []string{"cpu"}}, log)
	if err != nil {
		return Report{}, fmt.Errorf("prune: open %s for calibration preprocessing: %w", cfg.Model, err)
	}
	frames, err := quant.ReadFrames(cfg.Calib, 0, cfg.Frames, det)
	det.Close()
	if err != nil {
		return Report{}, err
	}
	p, rep, err := Prune(m, frames, shape, cfg.Options)
	if err != nil {
		return rep, err
	}
	return rep, quant.SaveModel(p, cfg.Out)
}
