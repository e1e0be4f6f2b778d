package stages

import (
	"context"
	"slices"
	"sync"
	"time"
)

// runParallel runs a stage on several instances at once (Stage plus
// Replicas): a dispatcher waits for a free instance, collects the next batch
// in input order, admits it against the deadline and numbers it; the
// instance runs it, and each stream's results go on in number order, so
// per-stream frame order holds. A stream's frames wait only for that
// stream's earlier batches, not for every earlier batch: with motion
// regions one batch may be four detector runs and the next one, and the
// short batch's other cameras would otherwise sit behind the long one,
// out of sight of the deadline check that let them in.
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
		seq     uint64
		streams []string
		outs    []*Frame
	}
	order := newStreamOrder()
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
			job := seq
			seq++
			streams := order.add(job, live)
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
				results <- result{seq: job, streams: streams, outs: outs}
			})
		}
	}()

	var ready []*Frame
	for res := range results {
		ready = order.done(res.seq, res.streams, res.outs, ready[:0])
		for _, o := range ready {
			out.push(ctx, o)
		}
	}
}

// streamOrder puts the results of batches that finish out of order back in
// order per stream: a stream's frames from batch k go on once every earlier
// batch holding frames of that stream has gone on.
type streamOrder struct {
	mu sync.Mutex
	// waiting lists, per stream, the batches holding its frames that have
	// not gone on, oldest first.
	waiting map[string][]uint64
	// finished holds, per batch, the frames of each of its streams that
	// are waiting for an earlier batch of that stream.
	finished map[uint64]map[string][]*Frame
}

func newStreamOrder() *streamOrder {
	return &streamOrder{waiting: map[string][]uint64{}, finished: map[uint64]map[string][]*Frame{}}
}

// add registers batch job's frames before it runs and returns its streams,
// each once, in the order they first appear.
func (o *streamOrder) add(job uint64, live []*Frame) []string {
	var streams []string
	for _, f := range live {
		if !slices.Contains(streams, f.Stream) {
			streams = append(streams, f.Stream)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range streams {
		o.waiting[s] = append(o.waiting[s], job)
	}
	return streams
}

// done records what batch job put out and appends to ready, in order, every
// frame that may now go on. A frame of a stream the batch did not hold (a
// stage that makes frames) goes on at once.
func (o *streamOrder) done(job uint64, streams []string, outs []*Frame, ready []*Frame) []*Frame {
	byStream := make(map[string][]*Frame, len(streams))
	for _, s := range streams {
		byStream[s] = nil
	}
	for _, f := range outs {
		if _, ok := byStream[f.Stream]; !ok {
			ready = append(ready, f)
			continue
		}
		byStream[f.Stream] = append(byStream[f.Stream], f)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(streams) > 0 {
		o.finished[job] = byStream
	}
	for _, s := range streams {
		q := o.waiting[s]
		for len(q) > 0 {
			held, ok := o.finished[q[0]]
			if !ok {
				break // an earlier batch of s is still running
			}
			ready = append(ready, held[s]...)
			delete(held, s)
			if len(held) == 0 {
				delete(o.finished, q[0])
			}
			q = q[1:]
		}
		if len(q) == 0 {
			delete(o.waiting, s)
		} else {
			o.waiting[s] = q
		}
	}
	return ready
}
