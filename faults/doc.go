// Package faults is Osprey's fault-injection suite: tests that kill and
// restart RTSP servers, stall and corrupt streams, block sinks, take NATS
// down, fill the spool's disk and signal the real binary, and assert the
// documented behaviour. The tests build only with the `faults` tag:
//
//	go test -tags faults,matprofile ./faults/
//
// Durations are reduced by default; OSPREY_FAULT_SCALE=N (or -scale N)
// stretches every phase N times for a longer run. See docs/reliability.md.
package faults
