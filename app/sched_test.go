package app

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/internal/sched"
)

// TestBackgroundRunsWithThePolicy: what components get as
// Resources.Background runs their loop on a thread the kernel reports with
// scheduling.background's class and nice value.
func TestBackgroundRunsWithThePolicy(t *testing.T) {
	fifteen := 15
	var got sched.Info
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		background(sched.Policy{Class: sched.Batch, Nice: &fifteen}, slog.New(slog.DiscardHandler))(func() {
			got, err = sched.Thread(sched.TID())
		})
	}()
	<-done
	require.NoError(t, err)
	require.Equal(t, sched.Batch, got.Class)
	require.Equal(t, 15, got.Nice)
}
