// Package onnxgraph is a small builder and reader for ONNX models on top of
// the protoc-generated types in github.com/advancedclimatesystems/gonnx/onnx.
//
// It is used by the TF.js importer (infer/tfjs), by tests that build tiny
// models with planted outputs, and by the INT8 quantiser. A Graph collects
// inputs, outputs, initializers and nodes; the first error it meets is kept
// and returned by Model, so building code stays linear.
package onnxgraph

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/encoding/protowire"
)

// Element types most callers need, re-exported so callers need not import
// the protobuf package for them.
const (
	Float = onnx.TensorProto_FLOAT
	Int32 = onnx.TensorProto_INT32
	Int64 = onnx.TensorProto_INT64
	Uint8 = onnx.TensorProto_UINT8
	Int8  = onnx.TensorProto_INT8
)

// DefaultOpset is the ONNX operator set version Model uses when given 0.
const DefaultOpset = 13

// IRVersion is the ONNX IR version written into every model (IR 8 is
// readable by ONNX Runtime >= 1.10 and OpenCV 4.6).
const IRVersion = 8

// Dim is one dimension of a tensor shape: a fixed size, or a symbolic name
// such as "N" for a dynamic batch.
type Dim struct {
	Value int64
	Param string
}

// Fixed returns a fixed-size dimension.
func Fixed(v int64) Dim { return Dim{Value: v} }

// Sym returns a symbolic (dynamic) dimension named p.
func Sym(p string) Dim { return Dim{Param: p} }

// Shape returns fixed dimensions; a negative size becomes the symbolic
// dimension "N".
func Shape(dims ...int64) []Dim {
	out := make([]Dim, len(dims))
	for i, d := range dims {
		if d < 0 {
			out[i] = Sym("N")
		} else {
			out[i] = Fixed(d)
		}
	}
	return out
}

// String returns the size, or the symbolic name.
func (d Dim) String() string {
	if d.Param != "" {
		return d.Param
	}
	return strconv.FormatInt(d.Value, 10)
}

// Graph builds one ONNX graph. It is not safe for concurrent use.
type Graph struct {
	g     *onnx.GraphProto
	names map[string]nameState
	err   error
}

// NewGraph returns an empty graph called name.
func NewGraph(name string) *Graph {
	return &Graph{g: &onnx.GraphProto{Name: name}, names: map[string]nameState{}}
}

// Proto returns the graph being built (for readers and passes that edit it).
func (g *Graph) Proto() *onnx.GraphProto { return g.g }

// Err returns the first error met while building, if any.
func (g *Graph) Err() error { return g.err }

func (g *Graph) fail(format string, args ...any) {
	if g.err == nil {
		g.err = fmt.Errorf("onnxgraph: "+format, args...)
	}
}

// claim records name as used; a second use is an error.
func (g *Graph) claim(name string) {
	if name == "" {
		g.fail("empty tensor name in graph %q", g.g.Name)
		return
	}
	if g.names[name] == defined {
		g.fail("tensor name %q defined twice in graph %q", name, g.g.Name)
		return
	}
	g.names[name] = defined
}

type nameState uint8

const (
	free nameState = iota
	reserved
	defined
)

// Unique returns base if no tensor in the graph uses or reserved it yet,
// else base_1, base_2, ... The returned name is reserved: a later Unique
// will not return it, and one node, input or initializer may then define it.
func (g *Graph) Unique(base string) string {
	name := base
	for i := 1; g.names[name] != free; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	g.names[name] = reserved
	return name
}

// Has reports whether a tensor called name has been defined or reserved.
func (g *Graph) Has(name string) bool { return g.names[name] != free }

// ValueInfo returns a tensor value description with the given type and shape.
func ValueInfo(name string, elem onnx.TensorProto_DataType, dims ...Dim) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for _, d := range dims {
		td := &onnx.TensorShapeProto_Dimension{}
		if d.Param != "" {
			td.Value = &onnx.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
		} else {
			td.Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d.Value}
		}
		shape.Dim = append(shape.Dim, td)
	}
	return &onnx.ValueInfoProto{
		Name: name,
		Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
			ElemType: int32(elem),
			Shape:    shape,
		}}},
	}
}

// AddInput declares a graph input.
func (g *Graph) AddInput(name string, elem onnx.TensorProto_DataType, dims ...Dim) {
	g.claim(name)
	g.g.Input = append(g.g.Input, ValueInfo(name, elem, dims...))
}

// AddOutput declares a graph output; name must be produced by a node,
// an input or an initializer by the time Model is called.
func (g *Graph) AddOutput(name string, elem onnx.TensorProto_DataType, dims ...Dim) {
	g.g.Output = append(g.g.Output, ValueInfo(name, elem, dims...))
}

// AddInitializer adds a constant tensor (made with FloatTensor, Int64Tensor
// or Int32Tensor) to the graph.
func (g *Graph) AddInitializer(t *onnx.TensorProto) {
	if t == nil {
		g.fail("nil initializer in graph %q", g.g.Name)
		return
	}
	if err := checkTensor(t); err != nil {
		if g.err == nil {
			g.err = err
		}
		return
	}
	g.claim(t.Name)
	g.g.Initializer = append(g.g.Initializer, t)
}

// AddNode appends a node computing outputs from inputs. An empty input name
// means an omitted optional input. The node is named after its first
// output. Outputs must be new names.
func (g *Graph) AddNode(opType string, inputs, outputs []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	n := &onnx.NodeProto{OpType: opType, Input: inputs, Output: outputs, Attribute: attrs}
	if len(outputs) > 0 {
		n.Name = outputs[0]
	}
	for _, o := range outputs {
		g.claim(o)
	}
	g.g.Node = append(g.g.Node, n)
	return n
}

// Model wraps the graph in a model with the given opset (0 means
// DefaultOpset). It checks that every node input and graph output is
// defined before use, so a broken graph fails here rather than in a runtime.
func (g *Graph) Model(opset int64) (*onnx.ModelProto, error) {
	if g.err != nil {
		return nil, g.err
	}
	if opset == 0 {
		opset = DefaultOpset
	}
	if err := Check(g.g); err != nil {
		return nil, err
	}
	return &onnx.ModelProto{
		IrVersion:       IRVersion,
		ProducerName:    "osprey",
		ProducerVersion: "1",
		OpsetImport:     []*onnx.OperatorSetIdProto{{Domain: "", Version: opset}},
		Graph:           g.g,
	}, nil
}

// Check verifies that the graph is in topological order: every node input
// and every graph output is a graph input, an initializer or the output of
// an earlier node.
func Check(gp *onnx.GraphProto) error {
	defined := map[string]bool{}
	for _, in := range gp.Input {
		defined[in.Name] = true
	}
	for _, t := range gp.Initializer {
		defined[t.Name] = true
	}
	for _, n := range gp.Node {
		for _, in := range n.Input {
			if in != "" && !defined[in] {
				return fmt.Errorf("onnxgraph: graph %q: node %q (%s) uses %q before it is defined", gp.Name, n.Name, n.OpType, in)
			}
		}
		for _, o := range n.Output {
			defined[o] = true
		}
	}
	for _, o := range gp.Output {
		if !defined[o.Name] {
			return fmt.Errorf("onnxgraph: graph %q: output %q is never computed", gp.Name, o.Name)
		}
	}
	return nil
}

func numel(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

func checkTensor(t *onnx.TensorProto) error {
	for _, d := range t.Dims {
		if d < 0 {
			return fmt.Errorf("onnxgraph: tensor %q has negative dimension in %v", t.Name, t.Dims)
		}
	}
	want := numel(t.Dims)
	var got int64
	switch onnx.TensorProto_DataType(t.DataType) {
	case Float, Int32:
		got = int64(len(t.RawData) / 4)
	case Int64:
		got = int64(len(t.RawData) / 8)
	case Uint8, Int8:
		got = int64(len(t.RawData))
	default:
		return nil
	}
	if len(t.RawData) == 0 {
		got = int64(len(t.FloatData) + len(t.Int64Data) + len(t.Int32Data))
	}
	if got != want {
		return fmt.Errorf("onnxgraph: tensor %q has %d elements, shape %v needs %d", t.Name, got, t.Dims, want)
	}
	return nil
}

// FloatTensor returns a float32 tensor stored as little-endian raw data.
func FloatTensor(name string, dims []int64, data []float32) *onnx.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(Float), RawData: raw}
}

// Int64Tensor returns an int64 tensor stored as little-endian raw data.
func Int64Tensor(name string, dims []int64, data []int64) *onnx.TensorProto {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(Int64), RawData: raw}
}

// Int32Tensor returns an int32 tensor stored as little-endian raw data.
func Int32Tensor(name string, dims []int64, data []int32) *onnx.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(v))
	}
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(Int32), RawData: raw}
}

// Floats decodes a float32 tensor (raw or typed storage).
func Floats(t *onnx.TensorProto) ([]float32, error) {
	if onnx.TensorProto_DataType(t.DataType) != Float {
		return nil, fmt.Errorf("onnxgraph: tensor %q is %s, not FLOAT", t.Name, onnx.TensorProto_DataType(t.DataType))
	}
	if len(t.RawData) == 0 {
		return append([]float32(nil), t.FloatData...), checkTensor(t)
	}
	if err := checkTensor(t); err != nil {
		return nil, err
	}
	out := make([]float32, len(t.RawData)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[4*i:]))
	}
	return out, nil
}

// Int64s decodes an int64 or int32 tensor as int64 values.
func Int64s(t *onnx.TensorProto) ([]int64, error) {
	if err := checkTensor(t); err != nil {
		return nil, err
	}
	switch onnx.TensorProto_DataType(t.DataType) {
	case Int64:
		if len(t.RawData) == 0 {
			return append([]int64(nil), t.Int64Data...), nil
		}
		out := make([]int64, len(t.RawData)/8)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(t.RawData[8*i:]))
		}
		return out, nil
	case Int32:
		if len(t.RawData) == 0 {
			out := make([]int64, len(t.Int32Data))
			for i, v := range t.Int32Data {
				out[i] = int64(v)
			}
			return out, nil
		}
		out := make([]int64, len(t.RawData)/4)
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.RawData[4*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("onnxgraph: tensor %q is %s, not an integer tensor", t.Name, onnx.TensorProto_DataType(t.DataType))
}

// AttrInt returns an INT attribute.
func AttrInt(name string, v int64) *onnx.AttributeProto {
	a := &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
	if v == 0 {
		// proto3 drops zero scalars; readers with proto2 presence checks
		// (OpenCV's importer) then reject the attribute. Write it explicitly.
		a.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 0))
	}
	return a
}

// AttrInts returns an INTS attribute.
func AttrInts(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

// AttrFloat returns a FLOAT attribute.
func AttrFloat(name string, v float32) *onnx.AttributeProto {
	a := &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_FLOAT, F: v}
	if math.Float32bits(v) == 0 {
		// As in AttrInt: keep an explicit +0 for proto2-style readers.
		a.ProtoReflect().SetUnknown(protowire.AppendFixed32(protowire.AppendTag(nil, 2, protowire.Fixed32Type), 0))
	}
	return a
}

// AttrFloats returns a FLOATS attribute.
func AttrFloats(name string, v ...float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_FLOATS, Floats: v}
}

// AttrString returns a STRING attribute.
func AttrString(name, v string) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_STRING, S: []byte(v)}
}

// AttrTensor returns a TENSOR attribute (for example the value of a
// Constant node).
func AttrTensor(name string, t *onnx.TensorProto) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_TENSOR, T: t}
}

// ErrNoGraph is returned by Load for a file that decodes but holds no graph.
var ErrNoGraph = errors.New("onnxgraph: model has no graph")
