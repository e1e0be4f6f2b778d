package stages

import (
	"context"
	"sync"
)

// claimInlet is an inlet several consumers can share by stream: the fair
// queue of a live pipeline.
type claimInlet interface {
	inlet
	// recvClaim waits for the next frame of a stream no other consumer
	// holds and holds that stream until release; recvClosed once the
	// queue is closed and nothing claimable is left.
	recvClaim() (*Frame, recvState)
	release(stream string)
}

// runPerStream runs a stage on st.StreamWorkers goroutines, each working on
// a different stream's frame (StageSpec.StreamWorkers). A stream's frames
// are processed one at a time and in order, and each goes on before the
// stream's next one is taken, so they also leave in order.
//
// Live, the inlet is the fair queue: a free worker claims the next frame,
// in the queue's round-robin order, of a stream no other worker holds, so
// no worker waits while another stream has a frame ready and each stream's
// frames still wait in its own slot (the newest kept). Offline, on a plain
// queue, each stream sticks to one worker, given in turn as streams appear.
func (r *Runner) runPerStream(ctx context.Context, st StageSpec, in inlet, out link) {
	var (
		estMu sync.Mutex
		est   estimate // per unit of work (workUnits)
	)
	step := func(f *Frame) {
		one := []*Frame{f}
		units := workUnits(one)
		estMu.Lock()
		e := est.value() * units
		estMu.Unlock()
		if !st.KeepStale && r.late(f, e) {
			in.drop(f, ReasonStale)
			return
		}
		r.obs.Frame(f.Stream, st.Name)
		outs, took, _ := r.call(ctx, st, st.Stage, one)
		estMu.Lock()
		est.observeWork(took, units)
		estMu.Unlock()
		for _, o := range outs {
			out.push(ctx, o)
		}
	}
	n := st.StreamWorkers
	var wg sync.WaitGroup
	if cq, ok := in.(claimInlet); ok {
		for range n {
			wg.Go(func() {
				for {
					f, state := cq.recvClaim()
					if state == recvClosed {
						return
					}
					stream := f.Stream // f may be released by the time step returns
					step(f)
					cq.release(stream)
				}
			})
		}
		wg.Wait()
		return
	}
	work := make([]chan *Frame, n)
	for i := range work {
		work[i] = make(chan *Frame, 1)
		wg.Go(func() {
			for f := range work[i] {
				step(f)
			}
		})
	}
	owner := map[string]int{}
	for {
		f, state := in.recv(nil)
		if state == recvClosed {
			break
		}
		w, ok := owner[f.Stream]
		if !ok {
			w = len(owner) % n
			owner[f.Stream] = w
		}
		work[w] <- f
	}
	for _, c := range work {
		close(c)
	}
	wg.Wait()
}
