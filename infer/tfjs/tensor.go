package tfjs

import (
	"fmt"
	"math"
)

// DType is the element type of a constant tensor.
type DType int

// Element types of TF.js weights.
const (
	Float32 DType = iota
	Int32
)

// Tensor is a constant tensor held during conversion. Values are float64 so
// one code path folds both float32 and int32 graphs; they are rounded back
// to the declared type when written out.
//
// Integer vectors that come from Shape of a tensor with a dynamic batch may
// hold symbolic elements: k*N is stored as -k*symUnit (see symValue).
type Tensor struct {
	DType DType
	Shape []int64
	Data  []float64
}

// symUnit encodes a multiple of the dynamic batch size N in a constant
// integer: far outside any real shape value, exact in float64.
const symUnit = float64(1 << 40)

// symValue returns the constant encoding of the dimension d (negative d
// means -d*N).
func symValue(d int64) float64 {
	if d < 0 {
		return float64(d) * symUnit
	}
	return float64(d)
}

// isSym reports whether v is a symbolic multiple of N.
func isSym(v float64) bool { return v <= -symUnit/2 }

// dimOf decodes a shape value: a symbolic one back to a negative dimension.
func dimOf(v float64) int64 {
	if isSym(v) {
		return int64(math.Round(v / symUnit))
	}
	return int64(v)
}

func (t *Tensor) hasSym() bool {
	for _, v := range t.Data {
		if isSym(v) {
			return true
		}
	}
	return false
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

func stridesOf(shape []int64) []int64 {
	s := make([]int64, len(shape))
	acc := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// build makes a tensor of shape by computing, for every output index, the
// flat offset of the input element to copy.
func build(dt DType, shape []int64, src []float64, offset func(idx []int64) int64) *Tensor {
	n := numel(shape)
	if n < 0 || n > maxFold {
		panic(fmt.Sprintf("folded constant of shape %v is too large", shape))
	}
	out := &Tensor{DType: dt, Shape: append([]int64{}, shape...), Data: make([]float64, n)}
	idx := make([]int64, len(shape))
	for i := int64(0); i < n; i++ {
		out.Data[i] = src[offset(idx)]
		for k := len(idx) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
	return out
}

// maxFold bounds the size of a constant folded in Go (64 Mi elements):
// larger results mean a malformed graph.
const maxFold = 1 << 26

// broadcastShape applies NumPy/TF broadcasting to two shapes whose
// dimensions may be symbolic (negative).
func broadcastShape(a, b []int64) ([]int64, error) {
	n := max(len(a), len(b))
	out := make([]int64, n)
	for i := range n {
		da, db := int64(1), int64(1)
		if j := i - (n - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (n - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %s and %s do not broadcast", fmtShape(a), fmtShape(b))
		}
	}
	return out, nil
}

func fmtShape(s []int64) string {
	out := "["
	for i, d := range s {
		if i > 0 {
			out += ","
		}
		switch {
		case d == -1:
			out += "N"
		case d < 0:
			out += fmt.Sprintf("%dN", -d)
		default:
			out += fmt.Sprint(d)
		}
	}
	return out + "]"
}

// binaryT folds an element-wise op with broadcasting.
func binaryT(a, b *Tensor, f func(x, y float64) float64) (*Tensor, error) {
	if a.hasSym() || b.hasSym() {
		return nil, fmt.Errorf("arithmetic on a dynamic batch size is not supported (fix the batch size)")
	}
	shape, err := broadcastShape(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	sa, sb := bstrides(a.Shape, len(shape)), bstrides(b.Shape, len(shape))
	n := numel(shape)
	if n > maxFold {
		return nil, fmt.Errorf("folded constant of shape %v is too large", shape)
	}
	out := &Tensor{DType: a.DType, Shape: shape, Data: make([]float64, n)}
	idx := make([]int64, len(shape))
	for i := int64(0); i < n; i++ {
		var oa, ob int64
		for k, v := range idx {
			oa += v * sa[k]
			ob += v * sb[k]
		}
		out.Data[i] = f(a.Data[oa], b.Data[ob])
		for k := len(idx) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
	if a.DType == Int32 {
		for i, v := range out.Data {
			out.Data[i] = math.Trunc(v)
		}
	}
	return out, nil
}

// bstrides returns strides of shape aligned right to rank n, 0 where the
// dimension is broadcast.
func bstrides(shape []int64, n int) []int64 {
	s := stridesOf(shape)
	out := make([]int64, n)
	for i := range shape {
		if shape[i] != 1 {
			out[n-len(shape)+i] = s[i]
		}
	}
	return out
}

func unary(a *Tensor, f func(float64) float64) *Tensor {
	out := &Tensor{DType: a.DType, Shape: append([]int64{}, a.Shape...), Data: make([]float64, len(a.Data))}
	for i, v := range a.Data {
		out.Data[i] = f(v)
	}
	return out
}

func transposeT(a *Tensor, perm []int64) *Tensor {
	shape := make([]int64, len(perm))
	for i, p := range perm {
		shape[i] = a.Shape[p]
	}
	st := stridesOf(a.Shape)
	return build(a.DType, shape, a.Data, func(idx []int64) int64 {
		var o int64
		for i, p := range perm {
			o += idx[i] * st[p]
		}
		return o
	})
}

func reshapeT(a *Tensor, shape []int64) *Tensor {
	return &Tensor{DType: a.DType, Shape: append([]int64{}, shape...), Data: a.Data}
}

func concatT(ts []*Tensor, axis int) *Tensor {
	shape := append([]int64{}, ts[0].Shape...)
	shape[axis] = 0
	for _, t := range ts {
		shape[axis] += t.Shape[axis]
	}
	out := &Tensor{DType: ts[0].DType, Shape: shape}
	outer := numel(shape[:axis])
	for o := int64(0); o < outer; o++ {
		for _, t := range ts {
			chunk := numel(t.Shape[axis:])
			out.Data = append(out.Data, t.Data[o*chunk:(o+1)*chunk]...)
		}
	}
	return out
}

// sliceT takes begin/end/step per dimension (already normalised and
// clamped), returning the sliced tensor.
func sliceT(a *Tensor, begin, size, step []int64) *Tensor {
	st := stridesOf(a.Shape)
	return build(a.DType, size, a.Data, func(idx []int64) int64 {
		var o int64
		for i, v := range idx {
			o += (begin[i] + v*step[i]) * st[i]
		}
		return o
	})
}

func tileT(a *Tensor, reps []int64) *Tensor {
	shape := make([]int64, len(a.Shape))
	for i := range shape {
		shape[i] = a.Shape[i] * reps[i]
	}
	st := stridesOf(a.Shape)
	return build(a.DType, shape, a.Data, func(idx []int64) int64 {
		var o int64
		for i, v := range idx {
			o += (v % a.Shape[i]) * st[i]
		}
		return o
	})
}

// ints returns the values of a small integer constant.
func (t *Tensor) ints() []int64 {
	out := make([]int64, len(t.Data))
	for i, v := range t.Data {
		out[i] = int64(v)
	}
	return out
}

func (t *Tensor) float32s() []float32 {
	out := make([]float32, len(t.Data))
	for i, v := range t.Data {
		out[i] = float32(v)
	}
	return out
}
