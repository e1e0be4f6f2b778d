package quant

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/osprey-vision/osprey/infer"
)

// FileConfig is one `pipeline model quantize` run.
type FileConfig struct {
	Model, Out string
	// Format is the infer model format; its preprocessing prepares the
	// calibration frames exactly as the pipeline will.
	Format string
	// Calib is a video file or an image folder; Frames how many to use.
	Calib  string
	Frames int
	// Dynamic makes a weight-only variant and needs no calibration frames.
	Dynamic bool
	// Uint8Input makes the static variant take uint8 pixels (Uint8Input).
	Uint8Input bool
	Options
}

// QuantizeFile reads cfg.Model, quantises it and writes cfg.Out.
func QuantizeFile(cfg FileConfig, log *slog.Logger) (Report, error) {
	log = quiet(log)
	if cfg.Out == "" {
		return Report{}, fmt.Errorf("%w: --out is empty: give the file to write", ErrOptions)
	}
	m, err := LoadModel(cfg.Model)
	if err != nil {
		return Report{}, err
	}
	if cfg.Uint8Input && cfg.Dynamic {
		return Report{}, fmt.Errorf("%w: --uint8-input needs static quantisation, not --dynamic", ErrOptions)
	}
	if cfg.Dynamic {
		q, rep, err := QuantizeWeights(m, cfg.Options)
		if err != nil {
			return rep, err
		}
		return rep, SaveModel(q, cfg.Out)
	}
	if cfg.Calib == "" {
		return Report{}, fmt.Errorf("%w: --calib is empty: give a video or an image folder to calibrate on (or use --dynamic)", ErrOptions)
	}
	// Check the options before the slow part (reading and calibrating).
	if _, err := checkMethod(cfg.Options); err != nil {
		return Report{}, err
	}
	if _, err := makePlan(m, cfg.Options); err != nil {
		return Report{}, err
	}
	if cfg.Frames <= 0 {
		cfg.Frames = 64
	}
	shape, err := InputShape(m)
	if err != nil {
		return Report{}, err
	}
	det, err := infer.Open(infer.Config{Path: cfg.Model, Format: cfg.Format, Providers: []string{"cpu"}}, log)
	if err != nil {
		return Report{}, fmt.Errorf("quant: open %s for calibration preprocessing: %w", cfg.Model, err)
	}
	frames, err := ReadFrames(cfg.Calib, 0, cfg.Frames, det)
	det.Close()
	if err != nil {
		return Report{}, err
	}
	q, rep, err := QuantizeStatic(m, frames, shape, cfg.Options)
	if err != nil {
		return rep, err
	}
	if cfg.Uint8Input {
		u, ur, err := Uint8Input(q)
		if err != nil {
			return rep, err
		}
		q, rep.Uint8 = u, &ur
	}
	return rep, SaveModel(q, cfg.Out)
}

// quiet returns log, or a logger that shows only warnings when log is nil
// (the detectors used for preprocessing announce themselves at info).
func quiet(log *slog.Logger) *slog.Logger {
	if log != nil {
		return log
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// FP16File converts the model at in to FP16 (FP32 interface) and writes out.
func FP16File(in, out string) error {
	m, err := LoadModel(in)
	if err != nil {
		return err
	}
	h, err := ConvertFP16(m)
	if err != nil {
		return err
	}
	return SaveModel(h, out)
}
