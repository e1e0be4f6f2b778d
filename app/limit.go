package app

import (
	"context"

	"github.com/osprey-vision/osprey/stages"
)

// limitSource ends a stream after n frames (bench, tests).
type limitSource struct {
	stages.Source
	n, seen int
}

func (l *limitSource) Read(ctx context.Context) (*stages.Frame, error) {
	if l.seen >= l.n {
		return nil, stages.ErrEndOfStream
	}
	f, err := l.Source.Read(ctx)
	if err == nil {
		l.seen++
	}
	return f, err
}
