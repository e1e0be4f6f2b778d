// Package quant makes faster variants of ONNX models (static INT8 in QDQ
// form calibrated on real frames, weight-only INT8, FP16) and measures how
// far a variant's detections drift from its FP32 parent.
//
// Everything here works on the ONNX protobuf types and runs models in ONNX
// Runtime; there is no Python toolchain behind it.
package quant

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// ErrModel is wrapped by every error about a model file that cannot be used.
var ErrModel = errors.New("quant: bad model")

// LoadModel reads and parses an ONNX model file.
func LoadModel(path string) (*onnx.ModelProto, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("quant: read model %s: %w (check the --model path)", path, err)
	}
	m := &onnx.ModelProto{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%w: %s is not an ONNX model: %v", ErrModel, path, err)
	}
	if m.GetGraph() == nil || len(m.GetGraph().GetNode()) == 0 {
		return nil, fmt.Errorf("%w: %s has no graph nodes", ErrModel, path)
	}
	return m, nil
}

// SaveModel serialises m to path.
func SaveModel(m *onnx.ModelProto, path string) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("quant: encode model for %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("quant: write model %s: %w", path, err)
	}
	return nil
}

// opsetVersion returns the model's default-domain opset.
func opsetVersion(m *onnx.ModelProto) int64 {
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			return o.GetVersion()
		}
	}
	return 0
}

// graphIndex answers "who produces / who consumes this tensor" and "is it a
// constant" for one graph.
type graphIndex struct {
	producer  map[string]*onnx.NodeProto
	consumers map[string][]*onnx.NodeProto
	inits     map[string]*onnx.TensorProto
	outputs   map[string]bool
}

func indexGraph(g *onnx.GraphProto) *graphIndex {
	ix := &graphIndex{
		producer:  map[string]*onnx.NodeProto{},
		consumers: map[string][]*onnx.NodeProto{},
		inits:     map[string]*onnx.TensorProto{},
		outputs:   map[string]bool{},
	}
	for _, t := range g.GetInitializer() {
		ix.inits[t.GetName()] = t
	}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			ix.producer[o] = n
		}
		for _, in := range n.GetInput() {
			if in != "" {
				ix.consumers[in] = append(ix.consumers[in], n)
			}
		}
		// Constant nodes are initializers in all but name.
		if n.GetOpType() == "Constant" && len(n.GetOutput()) == 1 {
			for _, a := range n.GetAttribute() {
				if a.GetName() == "value" && a.GetT() != nil {
					ix.inits[n.GetOutput()[0]] = a.GetT()
				}
			}
		}
	}
	for _, o := range g.GetOutput() {
		ix.outputs[o.GetName()] = true
	}
	return ix
}

// floatData returns the values of a FLOAT tensor, whichever field holds them.
func floatData(t *onnx.TensorProto) ([]float32, error) {
	if onnx.TensorProto_DataType(t.GetDataType()) != onnx.TensorProto_FLOAT {
		return nil, fmt.Errorf("%w: tensor %q is %v, want FLOAT", ErrModel, t.GetName(), onnx.TensorProto_DataType(t.GetDataType()))
	}
	if len(t.GetFloatData()) > 0 {
		return t.GetFloatData(), nil
	}
	raw := t.GetRawData()
	if len(raw)%4 != 0 {
		return nil, fmt.Errorf("%w: tensor %q raw data is %d bytes", ErrModel, t.GetName(), len(raw))
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

func numel(dims []int64) int {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	return n
}

func floatTensor(name string, dims []int64, v []float32) *onnx.TensorProto {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), RawData: raw}
}

func int8Tensor(name string, dims []int64, v []int8) *onnx.TensorProto {
	raw := make([]byte, len(v))
	for i, x := range v {
		raw[i] = byte(x)
	}
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_INT8), RawData: raw}
}

func uint8Tensor(name string, dims []int64, v []uint8) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_UINT8), RawData: append([]byte(nil), v...)}
}

func int32Tensor(name string, dims []int64, v []int32) *onnx.TensorProto {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_INT32), RawData: raw}
}

func node(op, name string, in, out []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	return &onnx.NodeProto{OpType: op, Name: name, Input: in, Output: out, Attribute: attrs}
}

func attrInt(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

func attrInts(n *onnx.NodeProto, name string) []int64 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetInts()
		}
	}
	return nil
}

func attrIntOr(n *onnx.NodeProto, name string, def int64) int64 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetI()
		}
	}
	return def
}

// tensorValueInfo declares a float tensor of unknown shape, enough for ONNX
// Runtime to accept it as an extra graph output.
func tensorValueInfo(name string, elem onnx.TensorProto_DataType) *onnx.ValueInfoProto {
	return &onnx.ValueInfoProto{
		Name: name,
		Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{ElemType: int32(elem)}}},
	}
}
