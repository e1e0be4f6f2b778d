//go:build matprofile

package natsink

import "gocv.io/x/gocv"

// matCount is the number of open Mats (go test -tags matprofile).
func matCount() int { return gocv.MatProfile.Count() }
