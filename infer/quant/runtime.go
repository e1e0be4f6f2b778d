package quant

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrRuntime is wrapped by errors from starting or running ONNX Runtime.
var ErrRuntime = errors.New("quant: onnx runtime")

var ortOnce struct {
	sync.Mutex
	err error
}

// DefaultLibraryPath finds third_party/lib/libonnxruntime.so in the working
// directory or one of its parents (the repository layout), so commands and
// tests work from any package directory.
func DefaultLibraryPath() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, "third_party", "lib", "libonnxruntime.so")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// InitRuntime loads the ONNX Runtime shared library once per process; lib ""
// means DefaultLibraryPath. If another package already initialised the
// runtime, that one is used.
func InitRuntime(lib string) error {
	ortOnce.Lock()
	defer ortOnce.Unlock()
	if ort.IsInitialized() {
		return nil
	}
	if lib == "" {
		lib = DefaultLibraryPath()
	}
	if lib == "" {
		return fmt.Errorf("%w: libonnxruntime.so not found under third_party/lib (run scripts/setup.sh)", ErrRuntime)
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(); err != nil {
		ortOnce.err = fmt.Errorf("%w: load %s: %v", ErrRuntime, lib, err)
		return ortOnce.err
	}
	return nil
}

// Session runs one model with one float32 input on the CPU provider.
type Session struct {
	s       *ort.DynamicAdvancedSession
	input   string
	outputs []string
}

// SessionConfig sets the threads a Session may use; 0 lets ONNX Runtime pick.
type SessionConfig struct {
	IntraOpThreads int
	// NoOptimize disables ONNX Runtime graph optimisations (so QDQ models
	// run as written, in FP32, instead of as fused integer kernels).
	NoOptimize bool
	// OptimizedPath, if set, receives the graph ONNX Runtime actually runs
	// (to check which Q/DQ groups became QLinear* kernels).
	OptimizedPath string
}

// NewSession compiles a serialised model. outputs "" means all graph outputs.
func NewSession(model []byte, name string, outputs []string, cfg SessionConfig) (*Session, error) {
	if err := InitRuntime(""); err != nil {
		return nil, err
	}
	inputs, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrRuntime, name, err)
	}
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%w: %s has %d inputs, want 1", ErrModel, name, len(inputs))
	}
	if outputs == nil {
		for _, o := range outs {
			outputs = append(outputs, o.Name)
		}
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRuntime, err)
	}
	defer opts.Destroy()
	if cfg.IntraOpThreads > 0 {
		if err := opts.SetIntraOpNumThreads(cfg.IntraOpThreads); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRuntime, err)
		}
	}
	if cfg.NoOptimize {
		if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRuntime, err)
		}
	}
	if cfg.OptimizedPath != "" {
		if err := opts.SetOptimizedModelFilePath(cfg.OptimizedPath); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRuntime, err)
		}
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRuntime, err)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{inputs[0].Name}, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: load %s: %v", ErrRuntime, name, err)
	}
	return &Session{s: s, input: inputs[0].Name, outputs: outputs}, nil
}

// OpenSession loads a model file into a Session with all its graph outputs.
func OpenSession(path string, cfg SessionConfig) (*Session, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("quant: read model %s: %w (check the path)", path, err)
	}
	return NewSession(b, path, nil, cfg)
}

// Outputs returns the output names in the order Run returns them.
func (s *Session) Outputs() []string { return s.outputs }

// Output is one float32 result tensor, copied out of ONNX Runtime memory.
type Output struct {
	Shape []int64
	Data  []float32
}

// Run feeds one input of the given shape and returns every output as float32
// (non-float outputs are an error).
func (s *Session) Run(shape []int64, data []float32) ([]Output, error) {
	in, err := ort.NewTensor(ort.NewShape(shape...), data)
	if err != nil {
		return nil, fmt.Errorf("%w: input tensor: %v", ErrRuntime, err)
	}
	defer in.Destroy()
	outs := make([]ort.Value, len(s.outputs))
	if err := s.s.Run([]ort.Value{in}, outs); err != nil {
		return nil, fmt.Errorf("%w: run: %v", ErrRuntime, err)
	}
	res := make([]Output, len(outs))
	var firstErr error
	for i, v := range outs {
		if v == nil {
			continue
		}
		if t, ok := v.(*ort.Tensor[float32]); ok {
			res[i] = Output{Shape: append([]int64(nil), t.GetShape()...), Data: append([]float32(nil), t.GetData()...)}
		} else if firstErr == nil {
			firstErr = fmt.Errorf("%w: output %q is not float32", ErrModel, s.outputs[i])
		}
		v.Destroy()
	}
	return res, firstErr
}

// Close frees the session; safe to call twice.
func (s *Session) Close() error {
	if s == nil || s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	return err
}
