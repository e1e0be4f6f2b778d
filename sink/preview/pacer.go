package preview

import "time"

// pacer decides which frames an encode loop takes: at most max_fps, and at
// most saturated_max_fps while the pipeline says its detection path is
// saturated. Frames are spaced by capture time, so the rate is the source's
// as long as the pipeline keeps up.
type pacer struct {
	maxFPS, satFPS float64
	saturated      func() bool // nil: never saturated
	last           time.Time   // capture time of the last frame taken
}

// take reports whether the frame captured at captured is encoded; when it is
// not, reason is the drop reason to count.
func (p *pacer) take(captured time.Time) (ok bool, reason string) {
	fps, reason := p.maxFPS, dropFPSCap
	if p.satFPS > 0 && (fps == 0 || p.satFPS < fps) && p.saturated != nil && p.saturated() {
		fps, reason = p.satFPS, dropDetectorBusy
	}
	// A little slack so a 30 fps source is not cut to 15 by jitter.
	if fps > 0 && !p.last.IsZero() && captured.Sub(p.last) < time.Duration(float64(time.Second)/fps*0.9) {
		return false, reason
	}
	p.last = captured
	return true, ""
}
