// Package cpuload measures how busy the machine's CPUs are, from the
// kernel's cumulative counters (/proc/stat on Linux).
package cpuload

import "time"

// Sampler reports the busy fraction of all CPUs between successive calls.
// The zero value is ready to use; it is not safe for concurrent use.
type Sampler struct {
	prev   times
	primed bool
}

// times are cumulative CPU times summed over every CPU.
type times struct {
	busy, total time.Duration
}

// Busy returns the fraction (0..1) of CPU time spent busy (everything but
// idle and iowait; stolen time counts as busy, since the pipeline could not
// have it) since the previous call. ok is false on the first call, when the
// counters did not move, or where the platform has no counters.
func (s *Sampler) Busy() (frac float64, ok bool) {
	cur, err := read()
	if err != nil {
		return 0, false
	}
	prev, primed := s.prev, s.primed
	s.prev, s.primed = cur, true
	dt := cur.total - prev.total
	if !primed || dt <= 0 {
		return 0, false
	}
	return min(max(float64(cur.busy-prev.busy)/float64(dt), 0), 1), true
}
