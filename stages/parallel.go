package stages

import (
	"context"
	"sync"
	"time"
)

// runParallel runs a stage on several instances at once (Stage plus
// Replicas): a dispatcher waits for a free instance, collects the next batch
// in input order, admits it against the deadline and numbers it; the
// instance runs it, and the results are put back in number order before they
// go on, so per-stream frame order holds.
//
// On 2 cores, two inference sessions with one thread each outrun one session
// with two threads: the intra-op parallelism of a small network is far from
// perfect, while two independent runs are.
func (r *Runner) runParallel(ctx context.Context, st StageSpec, in inlet, out link) {
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

	type result struct {
		seq  uint64
		outs []*Frame
	}
	var (
		estMu sync.Mutex
		est   estimate // per unit of work (workUnits)
	)
	results := make(chan result, len(stagesAll))
	free := make(chan Stage, len(stagesAll))
	for _, s := range stagesAll {
		free <- s
	}

	go func() {
		var wg sync.WaitGroup
		defer func() {
			wg.Wait()
			close(results)
		}()
		b := newBatcher(in, n, st.BatchTimeout)
		var seq uint64
		for {
			// Wait for a free instance before collecting: a batch admitted
			// and then left waiting for a worker would age past the
			// deadline check that let it in.
			stage := <-free
			batch := b.next(nil)
			if batch == nil {
				return
			}
			estMu.Lock()
			e := est.value() * workUnits(batch)
			estMu.Unlock()
			live := r.admit(st, in, batch, e)
			// Every batch gets a number, even an empty one, so the
			// collector never waits for a number that will not come.
			job := seq
			seq++
			wg.Go(func() {
				defer func() { free <- stage }()
				var outs []*Frame
				if len(live) > 0 {
					var took time.Duration
					var err error
					units := workUnits(live)
					outs, took, err = r.call(ctx, st, stage, live)
					estMu.Lock()
					est.observeWork(took, units)
					estMu.Unlock()
					if err != nil {
						r.failed(st, live, err)
						outs = nil
					}
				}
				results <- result{seq: job, outs: outs}
			})
		}
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
