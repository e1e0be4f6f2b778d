//go:build !linux

package cpuload

import "errors"

func read() (times, error) { return times{}, errors.New("cpuload: no CPU counters on this platform") }
