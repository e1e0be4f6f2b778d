package natsink

// NeedsImages implements stages.ImageSink: with snapshots on, the runner
// passes frames with their image so events can carry a JPEG.
func (s *Sink) NeedsImages() bool { return s.cfg.Snapshots != nil }
