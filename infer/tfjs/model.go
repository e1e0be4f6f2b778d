// Package tfjs converts TensorFlow.js graph models (model.json plus weight
// shards) into ONNX models that ONNX Runtime (and, for a fixed batch,
// OpenCV's DNN module) can run. See docs/model-import.md.
package tfjs

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// Model is a parsed TF.js graph model with its weights decoded.
type Model struct {
	// Path is the model.json the model was read from.
	Path string
	// Nodes are the graph nodes, by name.
	Nodes map[string]*Node
	// Order lists node names in file order.
	Order []string
	// Weights are the decoded weight tensors, by name.
	Weights map[string]*Tensor
}

// Node is one TensorFlow NodeDef from modelTopology.node.
type Node struct {
	Name  string          `json:"name"`
	Op    string          `json:"op"`
	Input []string        `json:"input"`
	Attr  map[string]Attr `json:"attr"`
}

// Attr is one NodeDef attribute in TF.js's JSON encoding.
type Attr struct {
	I     *jsonInt   `json:"i"`
	F     *float64   `json:"f"`
	B     *bool      `json:"b"`
	S     jsonBytes  `json:"s"`
	Type  *int       `json:"type"`
	List  *attrList  `json:"list"`
	Shape *attrShape `json:"shape"`
}

type attrList struct {
	I []jsonInt   `json:"i"`
	F []float64   `json:"f"`
	S []jsonBytes `json:"s"`
}

type attrShape struct {
	Dim []struct {
		Size jsonInt `json:"size"`
	} `json:"dim"`
}

// jsonInt accepts protobuf-JSON int64 values, written as strings or numbers.
type jsonInt int64

func (j *jsonInt) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("bad integer %s", b)
	}
	*j = jsonInt(v)
	return nil
}

// jsonBytes accepts bytes written as a base64 string or as an array of
// numbers (both appear in TF.js model.json files).
type jsonBytes []byte

func (j *jsonBytes) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		d, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			*j = []byte(s)
			return nil
		}
		*j = d
		return nil
	}
	var nums []int
	if err := json.Unmarshal(b, &nums); err != nil {
		return err
	}
	out := make([]byte, len(nums))
	for i, n := range nums {
		out[i] = byte(n)
	}
	*j = out
	return nil
}

type modelJSON struct {
	ModelTopology *struct {
		Node []*Node `json:"node"`
	} `json:"modelTopology"`
	WeightsManifest []struct {
		Paths   []string     `json:"paths"`
		Weights []weightSpec `json:"weights"`
	} `json:"weightsManifest"`
}

type weightSpec struct {
	Name         string  `json:"name"`
	Shape        []int64 `json:"shape"`
	Dtype        string  `json:"dtype"`
	Quantization *struct {
		Dtype string   `json:"dtype"`
		Min   *float64 `json:"min"`
		Scale *float64 `json:"scale"`
	} `json:"quantization"`
}

// ReadModel reads model.json and its weight shards (looked up next to it).
func ReadModel(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tfjs: model file %s does not exist: check the path to model.json", path)
	}
	if err != nil {
		return nil, fmt.Errorf("tfjs: read model %s: %w", path, err)
	}
	var mj modelJSON
	if err := json.Unmarshal(b, &mj); err != nil {
		return nil, fmt.Errorf("tfjs: %s is not valid TF.js model JSON: %v", path, err)
	}
	if mj.ModelTopology == nil || len(mj.ModelTopology.Node) == 0 {
		return nil, fmt.Errorf("tfjs: %s has no modelTopology.node: only TF.js graph models (tf.loadGraphModel) are supported", path)
	}
	m := &Model{Path: path, Nodes: map[string]*Node{}, Weights: map[string]*Tensor{}}
	for _, n := range mj.ModelTopology.Node {
		if n.Name == "" || n.Op == "" {
			return nil, fmt.Errorf("tfjs: %s: a node has no name or op", path)
		}
		if _, dup := m.Nodes[n.Name]; dup {
			return nil, fmt.Errorf("tfjs: %s: node %q appears twice", path, n.Name)
		}
		m.Nodes[n.Name] = n
		m.Order = append(m.Order, n.Name)
	}
	dir := filepath.Dir(path)
	for gi, g := range mj.WeightsManifest {
		var data []byte
		for _, p := range g.Paths {
			sp := filepath.Join(dir, filepath.FromSlash(p))
			sb, err := os.ReadFile(sp)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("tfjs: weight shard %s (listed in %s) does not exist: copy all shard files next to model.json", sp, path)
			}
			if err != nil {
				return nil, fmt.Errorf("tfjs: read weight shard %s: %w", sp, err)
			}
			data = append(data, sb...)
		}
		off := 0
		for _, w := range g.Weights {
			t, n, err := decodeWeight(w, data[off:])
			if err != nil {
				return nil, fmt.Errorf("tfjs: %s: weights group %d (%v): %w", path, gi+1, g.Paths, err)
			}
			off += n
			m.Weights[w.Name] = t
		}
		if off != len(data) {
			return nil, fmt.Errorf("tfjs: %s: weights group %d (%v) has %d bytes but the manifest describes %d: shards do not match model.json", path, gi+1, g.Paths, len(data), off)
		}
	}
	return m, nil
}

// decodeWeight decodes one weight from the front of data and returns it
// with the number of bytes it used. Quantised weights are dequantised.
func decodeWeight(w weightSpec, data []byte) (*Tensor, int, error) {
	n := int64(1)
	for _, d := range w.Shape {
		if d < 0 {
			return nil, 0, fmt.Errorf("weight %q has negative dimension in %v", w.Name, w.Shape)
		}
		if d > 0 && n > int64(len(data))/d {
			return nil, 0, fmt.Errorf("weight %q with shape %v is larger than the shards", w.Name, w.Shape)
		}
		n *= d
	}
	var dt DType
	switch w.Dtype {
	case "float32":
		dt = Float32
	case "int32":
		dt = Int32
	default:
		return nil, 0, fmt.Errorf("weight %q has dtype %q: only float32 and int32 are supported", w.Name, w.Dtype)
	}
	size := 4
	qd := ""
	if w.Quantization != nil {
		qd = w.Quantization.Dtype
		switch qd {
		case "uint8":
			size = 1
		case "uint16", "float16":
			size = 2
		default:
			return nil, 0, fmt.Errorf("weight %q has quantization dtype %q: only uint8, uint16 and float16 are supported", w.Name, qd)
		}
		if qd != "float16" && (w.Quantization.Min == nil || w.Quantization.Scale == nil) {
			return nil, 0, fmt.Errorf("weight %q is %s-quantised but has no min/scale", w.Name, qd)
		}
	}
	need := int(n) * size
	if len(data) < need {
		return nil, 0, fmt.Errorf("weight %q needs %d bytes but the shards end after %d: a shard is truncated", w.Name, need, len(data))
	}
	t := &Tensor{DType: dt, Shape: append([]int64{}, w.Shape...), Data: make([]float64, n)}
	for i := range t.Data {
		var v float64
		switch {
		case qd == "uint8":
			v = *w.Quantization.Min + *w.Quantization.Scale*float64(data[i])
		case qd == "uint16":
			v = *w.Quantization.Min + *w.Quantization.Scale*float64(binary.LittleEndian.Uint16(data[2*i:]))
		case qd == "float16":
			v = float64(halfToFloat(binary.LittleEndian.Uint16(data[2*i:])))
		case dt == Int32:
			v = float64(int32(binary.LittleEndian.Uint32(data[4*i:])))
		default:
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:])))
		}
		if dt == Int32 && qd != "" {
			v = math.Round(v)
		}
		t.Data[i] = v
	}
	return t, need, nil
}

func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0:
		f := float32(frac) / 1024 * float32(math.Pow(2, -14))
		if sign != 0 {
			return -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

func (a Attr) int(def int64) int64 {
	if a.I == nil {
		return def
	}
	return int64(*a.I)
}

func (n *Node) attrInt(name string, def int64) int64 { return n.Attr[name].int(def) }

func (n *Node) attrString(name string) string { return string(n.Attr[name].S) }

func (n *Node) attrInts(name string) []int64 {
	l := n.Attr[name].List
	if l == nil {
		return nil
	}
	out := make([]int64, len(l.I))
	for i, v := range l.I {
		out[i] = int64(v)
	}
	return out
}

func (n *Node) attrFloat(name string, def float64) float64 {
	if f := n.Attr[name].F; f != nil {
		return *f
	}
	return def
}
