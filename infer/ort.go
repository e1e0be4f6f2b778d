package infer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/osprey-vision/osprey/internal/modroot"
)

// ErrNoRuntime means no ONNX Runtime shared library could be loaded.
var ErrNoRuntime = errors.New("infer: onnx runtime library not found")

// ONNX Runtime keeps one environment per process. It is created by the
// first Open that finds a library and lives until the process exits; a
// failed load leaves it uninitialised so a later Open can try again.
var (
	ortMu     sync.Mutex
	ortLoaded string
)

// libRel is where scripts/setup.sh puts the library, relative to the
// module root.
var libRel = filepath.Join("third_party", "lib", "libonnxruntime.so")

// libraryCandidates lists the libraries to try for a Config.Library value.
func libraryCandidates(lib string) []string {
	if lib != "" {
		return []string{lib}
	}
	var out []string
	if env := os.Getenv("ORT_LIB"); env != "" {
		out = append(out, env)
	}
	// The module root, found by walking up from the working directory (go
	// test runs in the package directory; the CLI in the repository).
	if root, err := modroot.FromWorkingDir(); err == nil {
		out = append(out, filepath.Join(root, libRel))
	}
	// Next to the executable, or one level up (bin/pipeline).
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		out = append(out, filepath.Join(dir, libRel), filepath.Join(filepath.Dir(dir), libRel))
	}
	// Bare name: the dynamic loader searches LD_LIBRARY_PATH and the
	// system directories.
	return append(out, "/usr/local/lib/libonnxruntime.so", "libonnxruntime.so")
}

// initRuntime loads ONNX Runtime once per process and returns the library
// path in use. A Config.Library that does not exist is an error even when
// another library is already loaded, so a typo is never silently ignored.
func initRuntime(lib string, log *slog.Logger) (string, error) {
	if lib != "" {
		if _, err := os.Stat(lib); err != nil {
			return "", fmt.Errorf("%w: model.library %s: %v (run scripts/setup.sh, or set model.library or ORT_LIB to libonnxruntime.so)", ErrNoRuntime, lib, err)
		}
	}
	ortMu.Lock()
	defer ortMu.Unlock()
	if ort.IsInitialized() {
		if lib != "" && lib != ortLoaded {
			log.Warn("onnx runtime already loaded; model.library ignored for this process", "loaded", ortLoaded, "library", lib)
		}
		return ortLoaded, nil
	}
	var tried []string
	seen := map[string]bool{}
	for _, c := range libraryCandidates(lib) {
		if seen[c] {
			continue
		}
		seen[c] = true
		if strings.ContainsRune(c, filepath.Separator) {
			if _, err := os.Stat(c); err != nil {
				tried = append(tried, c+" (missing)")
				continue
			}
		}
		ort.SetSharedLibraryPath(c)
		// Fatal-only logging: provider fallbacks are reported by Open through
		// slog, not as ONNX Runtime's coloured stderr lines.
		if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", c, err))
			continue
		}
		ortLoaded = c
		return c, nil
	}
	return "", fmt.Errorf("%w: tried %s: run scripts/setup.sh, or set ORT_LIB or model.library to libonnxruntime.so", ErrNoRuntime, strings.Join(tried, ", "))
}

// newSession opens path with the first execution provider in providers that
// works, and returns the session and the provider's name.
func newSession(cfg *Config, ins, outs []string, log *slog.Logger) (*ort.DynamicAdvancedSession, string, error) {
	providers := cfg.Providers
	if len(providers) == 0 {
		providers = []string{"cpu"}
	}
	var errs []string
	for _, p := range providers {
		s, err := trySession(cfg, p, ins, outs)
		if err == nil {
			return s, p, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", p, err))
		log.Info("execution provider unavailable, trying the next", "provider", p, "model", cfg.Path, "reason", err)
	}
	return nil, "", fmt.Errorf("infer: model %s: no execution provider worked (%s): add cpu to model.providers", cfg.Path, strings.Join(errs, "; "))
}

func trySession(cfg *Config, provider string, ins, outs []string) (*ort.DynamicAdvancedSession, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if cfg.Threads > 0 {
		if err := opts.SetIntraOpNumThreads(cfg.Threads); err != nil {
			return nil, err
		}
	}
	if cfg.InterOpThreads > 0 {
		if err := opts.SetInterOpNumThreads(cfg.InterOpThreads); err != nil {
			return nil, err
		}
	}
	if !cfg.Spin {
		// Idle pool threads otherwise spin after each run, taking CPU from
		// the decode and preprocess stages that run beside inference.
		for _, k := range []string{"session.intra_op.allow_spinning", "session.inter_op.allow_spinning"} {
			if err := opts.AddSessionConfigEntry(k, "0"); err != nil {
				return nil, err
			}
		}
	}
	if err := appendProvider(opts, provider); err != nil {
		return nil, err
	}
	return ort.NewDynamicAdvancedSession(cfg.Path, ins, outs, opts)
}

// appendProvider adds a non-CPU provider; the CPU build of ONNX Runtime
// answers with an error for each, which makes Open fall back.
func appendProvider(o *ort.SessionOptions, p string) error {
	switch p {
	case "cpu":
		return nil
	case "cuda":
		c, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return err
		}
		defer c.Destroy()
		return o.AppendExecutionProviderCUDA(c)
	case "tensorrt":
		t, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return err
		}
		defer t.Destroy()
		return o.AppendExecutionProviderTensorRT(t)
	case "openvino":
		return o.AppendExecutionProviderOpenVINO(nil)
	case "coreml":
		return o.AppendExecutionProviderCoreMLV2(nil)
	}
	return fmt.Errorf("unknown execution provider %q", p)
}
