// Package track assigns stable identities to detections over time, per stream.
//
// The Tracker follows ByteTrack: high-score detections are associated first,
// low-score ones then extend tracks the first pass left unmatched, each pass
// solved as a min-cost assignment (Hungarian method) on 1-IoU between Kalman
// predicted boxes and detections of the same class. Tracks live through
// tentative -> confirmed -> lost -> removed, aged by wall-clock time so the
// same configuration works at any frame rate. See docs/tracking.md.
package track

import "github.com/osprey-vision/osprey/object"

// Track is the tracker's view of one object on one frame. It lives in
// package object so the pipeline's contracts carry it without the tracker.
type Track = object.Track
