package onnxgraph

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Marshal encodes a model to its protobuf wire form.
func Marshal(m *onnx.ModelProto) ([]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnxgraph: encode model: %w", err)
	}
	return b, nil
}

// Save writes a model to path (via a temporary file and a rename, so a
// reader never sees a half-written model).
func Save(m *onnx.ModelProto, path string) error {
	b, err := Marshal(m)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("onnxgraph: write model %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("onnxgraph: write model %s: %w", path, err)
	}
	return nil
}

// Load reads and decodes an ONNX model file. Errors name the path and say
// whether the file is missing, empty, or not a valid (possibly truncated)
// ONNX model.
func Load(path string) (*onnx.ModelProto, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("onnxgraph: model file %s does not exist: check the path", path)
	}
	if err != nil {
		return nil, fmt.Errorf("onnxgraph: read model %s: %w", path, err)
	}
	m, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s: re-export or re-import the model)", err, path)
	}
	return m, nil
}

// Unmarshal decodes a model from its wire form and checks that it has a
// graph, an opset and that its nodes only use defined tensors.
func Unmarshal(b []byte) (*onnx.ModelProto, error) {
	if len(b) == 0 {
		return nil, errors.New("onnxgraph: model is empty")
	}
	m := &onnx.ModelProto{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("onnxgraph: not a valid ONNX model, truncated or corrupt: %v", err)
	}
	if m.Graph == nil {
		return nil, fmt.Errorf("%w: not a valid ONNX model, truncated or corrupt", ErrNoGraph)
	}
	if m.IrVersion == 0 || len(m.OpsetImport) == 0 {
		return nil, errors.New("onnxgraph: not a valid ONNX model, truncated or corrupt: ir_version or opset_import missing")
	}
	if err := Check(m.Graph); err != nil {
		return nil, fmt.Errorf("%w: truncated or corrupt", err)
	}
	return m, nil
}

// Opset returns the default-domain opset version a model imports (0 if none).
func Opset(m *onnx.ModelProto) int64 {
	for _, o := range m.OpsetImport {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			return o.Version
		}
	}
	return 0
}

// Dims returns the shape of a value description; unknown dimensions are "?".
func Dims(vi *onnx.ValueInfoProto) []Dim {
	tt := vi.GetType().GetTensorType()
	if tt == nil || tt.Shape == nil {
		return nil
	}
	out := make([]Dim, len(tt.Shape.Dim))
	for i, d := range tt.Shape.Dim {
		switch v := d.Value.(type) {
		case *onnx.TensorShapeProto_Dimension_DimValue:
			out[i] = Fixed(v.DimValue)
		case *onnx.TensorShapeProto_Dimension_DimParam:
			out[i] = Sym(v.DimParam)
		default:
			out[i] = Sym("?")
		}
	}
	return out
}

// ParamCount returns the number of elements in all initializers.
func ParamCount(gp *onnx.GraphProto) int64 {
	var n int64
	for _, t := range gp.Initializer {
		n += numel(t.Dims)
	}
	return n
}
