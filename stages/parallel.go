package stages

import (
	"context"
	"sync"
	"time"
)

// runParallel runs a stage on several instances at once (Stage plus
// Replicas): a dispatcher collects batches in input order and numbers them,
// each instance takes the next batch when free, and the results are put back
// in number order before they go on, so per-stream frame order holds.
//
// On 2 cores, two inference sessions with one thread each outrun one session
// with two threads: the intra-op parallelism of a small network is far from
// perfect, while two independent runs are.
func (r *Runner) runParallel(ctx context.Context, st StageSpec, in, out *queue) {
	stagesAll := append([]Stage{st.Stage}, st.Replicas...)
	defer func() {
		for _, s := range st.Replicas { // st.Stage is closed by runStage
			if err := s.Close(ctx); err != nil {
				r.log.Warn("stage close failed", "stage", st.Name, "err", err)
			}
		}
	}()
	n := 1
	if bs, ok := st.Stage.(BatchStage); ok {
		n = bs.BatchSize()
	}

	type job struct {
		seq    uint64
		frames []*Frame
	}
	type result struct {
		seq  uint64
		outs []*Frame
	}
	var (
		estMu sync.Mutex
		est   estimate
	)
	jobs := make(chan job)
	results := make(chan result, len(stagesAll))

	go func() {
		defer close(jobs)
		b := newBatcher(in, n, st.BatchTimeout)
		var seq uint64
		for {
			batch := b.next(nil)
			if batch == nil {
				return
			}
			estMu.Lock()
			e := est.value()
			estMu.Unlock()
			// Every batch gets a number, even an empty one, so the
			// collector never waits for a number that will not come.
			jobs <- job{seq: seq, frames: r.admit(st, in, batch, e)}
			seq++
		}
	}()

	var wg sync.WaitGroup
	for _, stage := range stagesAll {
		wg.Go(func() {
			for j := range jobs {
				var outs []*Frame
				if len(j.frames) > 0 {
					var took time.Duration
					var err error
					outs, took, err = r.call(ctx, st, stage, j.frames)
					estMu.Lock()
					est.observe(took)
					estMu.Unlock()
					if err != nil {
						r.failed(st, j.frames, err)
						outs = nil
					}
				}
				results <- result{seq: j.seq, outs: outs}
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	pending := map[uint64][]*Frame{}
	var next uint64
	for res := range results {
		pending[res.seq] = res.outs
		for {
			outs, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			for _, o := range outs {
				out.push(ctx, o)
			}
		}
	}
}
