package quant

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/infer"
)

// ErrFrames is wrapped by errors about the calibration or evaluation frames.
var ErrFrames = errors.New("quant: frames")

// Preprocessor turns a BGR image into one model input. *infer.Detector is
// one, so calibration frames are prepared exactly like the pipeline's.
type Preprocessor interface {
	Preprocess(img gocv.Mat, dst *infer.Input) error
	NewInputPool() *infer.InputPool
}

// InputShape returns the model's image input shape (batch forced to 1).
func InputShape(m *onnx.ModelProto) ([]int64, error) {
	inits := map[string]bool{}
	for _, t := range m.GetGraph().GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, in := range m.GetGraph().GetInput() {
		if inits[in.GetName()] {
			continue
		}
		var dims []int64
		for _, d := range in.GetType().GetTensorType().GetShape().GetDim() {
			dims = append(dims, d.GetDimValue())
		}
		if len(dims) != 4 {
			return nil, fmt.Errorf("%w: model input %s has shape %v, want a 4-D image tensor", ErrModel, in.GetName(), dims)
		}
		dims[0] = 1
		for _, d := range dims[1:] {
			if d <= 0 {
				return nil, fmt.Errorf("%w: model input %s has no fixed image size (%v)", ErrModel, in.GetName(), dims)
			}
		}
		return dims, nil
	}
	return nil, fmt.Errorf("%w: model has no input", ErrModel)
}

var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true}

// EachFrame calls fn for up to n frames after skipping skip, read from a
// video file or a folder of images (sorted by name). fn must not keep img.
func EachFrame(path string, skip, n int, fn func(img gocv.Mat) error) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %v (give a video file or an image folder)", ErrFrames, path, err)
	}
	done := 0
	if st.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrFrames, path, err)
		}
		var names []string
		for _, e := range ents {
			if !e.IsDir() && imageExts[strings.ToLower(filepath.Ext(e.Name()))] {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		if len(names) <= skip {
			return fmt.Errorf("%w: %s has %d images (jpg, png, bmp), need more than --skip %d", ErrFrames, path, len(names), skip)
		}
		for _, name := range names[skip:] {
			if done == n {
				break
			}
			img := gocv.IMRead(filepath.Join(path, name), gocv.IMReadColor)
			if img.Empty() {
				img.Close()
				return fmt.Errorf("%w: cannot decode %s", ErrFrames, filepath.Join(path, name))
			}
			err := fn(img)
			img.Close()
			if err != nil {
				return err
			}
			done++
		}
		return nil
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		return fmt.Errorf("%w: open video %s: %v", ErrFrames, path, err)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	for i := 0; done < n; i++ {
		if !vc.Read(&img) || img.Empty() {
			break
		}
		if i < skip {
			continue
		}
		if err := fn(img); err != nil {
			return err
		}
		done++
	}
	if done == 0 {
		return fmt.Errorf("%w: %s gave no frames after skipping %d", ErrFrames, path, skip)
	}
	return nil
}

// ReadFrames preprocesses up to n frames (after skip) from a video or image
// folder into model inputs.
func ReadFrames(path string, skip, n int, pre Preprocessor) ([][]float32, error) {
	pool := pre.NewInputPool()
	var out [][]float32
	err := EachFrame(path, skip, n, func(img gocv.Mat) error {
		in := pool.Get()
		defer in.Release()
		if err := pre.Preprocess(img, in); err != nil {
			return fmt.Errorf("quant: preprocess frame of %s: %w", path, err)
		}
		out = append(out, append([]float32(nil), in.Data...))
		return nil
	})
	return out, err
}
