// Package mot15 holds the opt-in evaluation of Osprey's tracker against
// SORT on the real MOT15 development sequences (go test ./track/eval/mot15
// -mot15). The data is not in the repository (its licence is the
// benchmark's); the test reads it from ../shared/data/mot15-dev next to the
// repository, or from -mot15.dir.
package mot15
