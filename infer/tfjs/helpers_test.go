package tfjs

import (
	"encoding/binary"
	"image"
	"math"
	"strconv"
)

func imageSize(w, h int) image.Point { return image.Pt(w, h) }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
