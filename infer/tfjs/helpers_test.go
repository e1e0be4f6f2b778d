package tfjs

import (
	"image"
	"strconv"
)

func imageSize(w, h int) image.Point { return image.Pt(w, h) }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
