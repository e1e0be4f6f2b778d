package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/internal/cputime"
	"github.com/osprey-vision/osprey/stages"
)

// decodeName is the name bench gives the source's Read (capture + decode).
const decodeName = "decode" // capture.DecodeThreadName is tag(decodeName)

// cpuMeter charges thread CPU time to the stages of a pipeline: each call
// of a source's Read and a stage's Process runs on a locked OS thread, timed
// with that thread's CPU clock. The thread carries a tag for the call's
// length, so threads that C code starts inside it (FFmpeg's decoder threads,
// ONNX Runtime's pool) inherit the tag, and their CPU is charged to the same
// stage.
type cpuMeter struct {
	mu     sync.Mutex
	stages map[string]*stageCPU
	// active counts the calls in flight on each thread: a thread tagged by
	// measure is a Go thread mid-call, not a helper.
	active map[int]int
	// helpers is the last reading of each tagged helper thread, by stage.
	helpers map[string]map[int]time.Duration
	// base is each helper thread's reading when the run started.
	base map[int]time.Duration
	err  error
}

type stageCPU struct {
	calls, frames int64
	cpu           time.Duration
}

func newCPUMeter() *cpuMeter {
	return &cpuMeter{stages: map[string]*stageCPU{}, active: map[int]int{}, helpers: map[string]map[int]time.Duration{}, base: map[int]time.Duration{}}
}

// tag is the thread name that marks name's helper threads; the source's
// decoder thread names itself the same way (capture.DecodeThreadName).
func tag(name string) string { return "osp:" + name }

// sampleEvery reads the helper threads every 250 ms until stop is closed,
// so a thread that exits with its stream loses at most that much. (Reading
// /proc costs about 0.1 ms a thread; at 50 ms it was a third of what bench
// reported as runtime overhead.)
func (m *cpuMeter) sampleEvery(stop <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			m.sampleHelpers(false)
		}
	}
}

// measure runs fn on a locked, tagged thread and charges its thread CPU to
// name for frames frames.
func (m *cpuMeter) measure(name string, frames int, fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := cputime.TID()
	m.mu.Lock()
	m.active[tid]++
	m.mu.Unlock()
	old, err := cputime.ThreadName()
	if err == nil {
		err = cputime.SetThreadName(tag(name))
	}
	t0, err0 := cputime.Thread()
	fn()
	t1, err1 := cputime.Thread()
	if err == nil {
		err = cputime.SetThreadName(old)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active[tid]--; m.active[tid] == 0 {
		delete(m.active, tid)
	}
	if err = firstErr(err, err0, err1); err != nil {
		m.err = cmpErr(m.err, err)
		return
	}
	s := m.stages[name]
	if s == nil {
		s = &stageCPU{}
		m.stages[name] = s
	}
	s.calls++
	s.frames += int64(frames)
	s.cpu += t1 - t0
}

// tagged runs fn on a locked thread tagged as name's, untimed: what it
// builds (a model session's thread pool) is charged to name when it runs.
func (m *cpuMeter) tagged(name string, fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := cputime.TID()
	m.mu.Lock()
	m.active[tid]++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.active[tid]--; m.active[tid] == 0 {
			delete(m.active, tid)
		}
		m.mu.Unlock()
	}()
	old, err := cputime.ThreadName()
	if err == nil {
		err = cputime.SetThreadName(tag(name))
	}
	fn()
	if err == nil {
		err = cputime.SetThreadName(old)
	}
	if err != nil {
		m.mu.Lock()
		m.err = cmpErr(m.err, err)
		m.mu.Unlock()
	}
}

// sampleHelpers reads every tagged thread; it runs every 250 ms during the
// run and before helper threads may exit (a source's or stage's Close). The
// baseline call, before the run, reads every thread: a decoder's thread is
// a Go thread that may have run other work before it was tagged.
func (m *cpuMeter) sampleHelpers(baseline bool) {
	// The lock is held across the read so that a thread measure is about to
	// untag is still seen as active.
	m.mu.Lock()
	defer m.mu.Unlock()
	match := func(name string) bool { return strings.HasPrefix(name, "osp:") }
	if baseline {
		match = nil
	}
	ts, err := cputime.Threads(match)
	if err != nil {
		m.err = cmpErr(m.err, err)
		return
	}
	for _, t := range ts {
		if baseline {
			m.base[t.TID] = t.CPU
			continue
		}
		name, ok := strings.CutPrefix(t.Name, "osp:")
		if !ok || m.active[t.TID] > 0 {
			continue
		}
		if m.helpers[name] == nil {
			m.helpers[name] = map[int]time.Duration{}
		}
		m.helpers[name][t.TID] = t.CPU
	}
}

// cpuTotals is what the process and each stage had used at one moment of a
// run: perFrame takes the difference of two.
type cpuTotals struct {
	run      runSample
	stages   map[string]time.Duration // own thread CPU of the stage's calls
	helpers  map[string]time.Duration // its helper threads since the baseline
	nhelpers map[string]int
}

// totals reads the helper threads, the process and every stage now.
func (m *cpuMeter) totals() (cpuTotals, error) {
	m.sampleHelpers(false)
	run, err := sampleRun()
	t := cpuTotals{run: run, stages: map[string]time.Duration{}, helpers: map[string]time.Duration{}, nhelpers: map[string]int{}}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, s := range m.stages {
		t.stages[name] = s.cpu
	}
	for name, hs := range m.helpers {
		for tid, cpu := range hs {
			t.helpers[name] += cpu - m.base[tid]
		}
		t.nhelpers[name] = len(hs)
	}
	return t, firstErr(err, m.err)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}

// instrument wraps cfg's sources and stages so that m sees every call.
func (m *cpuMeter) instrument(cfg *config.Pipeline) {
	for i := range cfg.Streams {
		p := &cfg.Streams[i].Source
		build := p.Build
		p.Build = func(c any, res *stages.Resources) (stages.Source, error) {
			var src stages.Source
			var err error
			m.tagged(decodeName, func() { src, err = build(c, res) })
			if err != nil {
				return nil, err
			}
			return &cpuSource{Source: src, m: m}, nil
		}
	}
	for i := range cfg.Stages {
		p := &cfg.Stages[i].Stage
		build := p.Build
		p.Build = func(c any, res *stages.Resources) ([]stages.StageSpec, error) {
			var specs []stages.StageSpec
			var err error
			// Building opens models: session threads are tagged too.
			m.tagged(p.Name, func() { specs, err = build(c, res) })
			if err != nil {
				return nil, err
			}
			for j := range specs {
				specs[j].Stage = m.wrap(specs[j].Name, specs[j].Stage)
				for k, r := range specs[j].Replicas {
					specs[j].Replicas[k] = m.wrap(specs[j].Name, r)
				}
			}
			return specs, nil
		}
	}
}

func (m *cpuMeter) wrap(name string, s stages.Stage) stages.Stage {
	c := &cpuStage{Stage: s, name: name, m: m}
	if b, ok := s.(stages.BatchStage); ok {
		return &cpuBatchStage{cpuStage: c, b: b}
	}
	return c
}

// cpuSource times a source's Read.
type cpuSource struct {
	stages.Source
	m *cpuMeter
}

func (s *cpuSource) Connect(ctx context.Context) (err error) {
	s.m.measure(decodeName, 0, func() { err = s.Source.Connect(ctx) })
	return err
}

func (s *cpuSource) Read(ctx context.Context) (f *stages.Frame, err error) {
	s.m.measure(decodeName, 1, func() { f, err = s.Source.Read(ctx) })
	if err != nil {
		s.m.sampleHelpers(false) // the decoder's threads may end with the stream
	}
	return f, err
}

func (s *cpuSource) Close(ctx context.Context) error {
	s.m.sampleHelpers(false)
	return s.Source.Close(ctx)
}

// cpuStage times a stage's Process.
type cpuStage struct {
	stages.Stage
	name string
	m    *cpuMeter
}

func (s *cpuStage) Process(ctx context.Context, f *stages.Frame) (out []*stages.Frame, err error) {
	s.m.measure(s.name, 1, func() { out, err = s.Stage.Process(ctx, f) })
	return out, err
}

func (s *cpuStage) Close(ctx context.Context) error {
	s.m.sampleHelpers(false)
	return s.Stage.Close(ctx)
}

// Provider passes the detect stage's provider through for the report.
func (s *cpuStage) Provider() string {
	if p, ok := s.Stage.(interface{ Provider() string }); ok {
		return p.Provider()
	}
	return ""
}

// cpuBatchStage is a cpuStage for a stage that takes batches.
type cpuBatchStage struct {
	*cpuStage
	b stages.BatchStage
}

func (s *cpuBatchStage) BatchSize() int { return s.b.BatchSize() }

func (s *cpuBatchStage) ProcessBatch(ctx context.Context, fs []*stages.Frame) (out []*stages.Frame, err error) {
	s.m.measure(s.name, len(fs), func() { out, err = s.b.ProcessBatch(ctx, fs) })
	return out, err
}

// runSample is what the process and the machine did over one timed run.
type runSample struct {
	at             time.Time
	process        time.Duration
	machine        cputime.Machine
	gc, goTotal    float64 // runtime/metrics estimates, CPU seconds
	allocB, allocN uint64
	gcCycles       uint64
}

var runtimeMetrics = []string{
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/gc/heap/allocs:bytes",
	"/gc/heap/allocs:objects",
	"/gc/cycles/total:gc-cycles",
}

func sampleRun() (runSample, error) {
	s := runSample{at: time.Now()}
	var err error
	if s.process, err = cputime.Process(); err != nil {
		return s, err
	}
	if s.machine, err = cputime.ReadMachine(); err != nil {
		return s, err
	}
	ms := make([]metrics.Sample, len(runtimeMetrics))
	for i, n := range runtimeMetrics {
		ms[i].Name = n
	}
	metrics.Read(ms)
	f := func(i int) float64 {
		if ms[i].Value.Kind() == metrics.KindFloat64 {
			return ms[i].Value.Float64()
		}
		return 0
	}
	u := func(i int) uint64 {
		if ms[i].Value.Kind() == metrics.KindUint64 {
			return ms[i].Value.Uint64()
		}
		return 0
	}
	s.gc, s.goTotal, s.allocB, s.allocN, s.gcCycles = f(0), f(1), u(2), u(3), u(4)
	return s, nil
}

// cpuReport is the CPU side of a bench run, per frame out of the pipeline.
type cpuReport struct {
	CPU         string             `json:"cpu"`
	Cores       int                `json:"cores"`
	StagesMs    map[string]float64 `json:"stages_ms_per_frame"`
	HelpersMs   map[string]float64 `json:"helper_threads_ms_per_frame,omitempty"`
	Helpers     map[string]int     `json:"helper_threads,omitempty"`
	StagesSumMs float64            `json:"stages_sum_ms_per_frame"`
	ProcessMs   float64            `json:"process_ms_per_frame"`
	OverheadMs  float64            `json:"runtime_overhead_ms_per_frame"`
	GCMs        float64            `json:"gc_ms_per_frame"`
	GCShare     float64            `json:"gc_share_of_process"`
	AllocBytes  float64            `json:"alloc_bytes_per_frame"`
	AllocObjs   float64            `json:"alloc_objects_per_frame"`
	GCCycles    uint64             `json:"gc_cycles"`
	IdealFPS    float64            `json:"ideal_fps"`
	RatioIdeal  float64            `json:"ratio_pipeline_ideal"`
	UsedCores   float64            `json:"process_cores_used"`
	OtherCores  float64            `json:"other_processes_cores"`
	BareMs      float64            `json:"bare_inference_ms_per_frame,omitempty"`
	order       []string
}

// perFrame turns two readings of the meter (a before b) into per-frame
// figures for the frames out between them at fps.
func perFrame(frames int, a, b cpuTotals, fps float64) *cpuReport {
	r := &cpuReport{CPU: cpuName(), Cores: runtime.NumCPU(), StagesMs: map[string]float64{}, HelpersMs: map[string]float64{}, Helpers: map[string]int{}}
	per := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(frames) }
	names := slices.Collect(maps.Keys(b.stages))
	slices.SortFunc(names, func(x, y string) int { return stageRank(x) - stageRank(y) })
	var sum time.Duration
	for _, n := range names {
		own := b.stages[n] - a.stages[n]
		h := b.helpers[n] - a.helpers[n]
		if nh := b.nhelpers[n]; nh > 0 {
			r.HelpersMs[n], r.Helpers[n] = per(h), nh
		}
		r.StagesMs[n] = per(own + h)
		sum += own + h
	}
	r.order = names
	r.StagesSumMs = per(sum)
	proc := b.run.process - a.run.process
	r.ProcessMs = per(proc)
	r.OverheadMs = per(proc - sum)
	r.GCMs = (b.run.gc - a.run.gc) * 1000 / float64(frames)
	if proc > 0 {
		r.GCShare = (b.run.gc - a.run.gc) / proc.Seconds()
	}
	r.AllocBytes = float64(b.run.allocB-a.run.allocB) / float64(frames)
	r.AllocObjs = float64(b.run.allocN-a.run.allocN) / float64(frames)
	r.GCCycles = b.run.gcCycles - a.run.gcCycles
	if r.StagesSumMs > 0 {
		r.IdealFPS = float64(r.Cores) * 1000 / r.StagesSumMs
		r.RatioIdeal = fps / r.IdealFPS
	}
	wall := b.run.at.Sub(a.run.at)
	if wall > 0 {
		r.UsedCores = proc.Seconds() / wall.Seconds()
		r.OtherCores = max(0, (b.run.machine.Busy-a.run.machine.Busy).Seconds()/wall.Seconds()-r.UsedCores)
	}
	return r
}

// stageRank orders the report as the pipeline runs: decode first, sinks last.
func stageRank(name string) int {
	switch {
	case name == decodeName:
		return 0
	case strings.HasPrefix(name, "sink:"):
		return 100
	}
	for i, n := range []string{"motion", "preprocess", "detect", "track"} {
		if n == name {
			return i + 1
		}
	}
	return 50
}

// cpuName returns the CPU's model name from /proc/cpuinfo ("" if unknown).
func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (c *cpuReport) print(tw io.Writer) {
	fmt.Fprintf(tw, "CPU per frame\t(thread CPU time; %s, %d cores)\n", c.CPU, c.Cores)
	for _, n := range c.order {
		extra := ""
		if h, ok := c.HelpersMs[n]; ok {
			extra = fmt.Sprintf("(%.3f ms of it on %d thread(s) of its own)", h, c.Helpers[n])
		}
		fmt.Fprintf(tw, "  %s\t%.3f ms\t%s\n", n, c.StagesMs[n], extra)
	}
	fmt.Fprintf(tw, "  stages\t%.3f ms\n", c.StagesSumMs)
	fmt.Fprintf(tw, "  runtime overhead\t%.3f ms\t(process %.3f ms - stages; GC %.3f ms, %.1f%% of process, %d cycles)\n",
		c.OverheadMs, c.ProcessMs, c.GCMs, 100*c.GCShare, c.GCCycles)
	fmt.Fprintf(tw, "  allocations\t%.0f B\t%.1f objects\n", c.AllocBytes, c.AllocObjs)
	if c.BareMs > 0 {
		fmt.Fprintf(tw, "  bare inference\t%.3f ms\t(the same sessions on pre-decoded frames)\n", c.BareMs)
	}
	fmt.Fprintf(tw, "ideal\t%.1f fps\tpipeline/ideal = %.2f (%d cores / stages)\n", c.IdealFPS, c.RatioIdeal, c.Cores)
	fmt.Fprintf(tw, "cores used\tthis process %.2f\tother processes %.2f\n", c.UsedCores, c.OtherCores)
}
