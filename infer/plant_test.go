package infer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
)

// plantSpec describes a test model with planted outputs, beyond what
// plantModel covers: metadata, an orig_target_sizes input, int64 outputs
// and outputs scaled by the sizes input as RT-DETR's postprocessor does.
type plantSpec struct {
	input []int64 // image input shape, batch first (negative: dynamic)
	// u8 makes the image input uint8 (cast to float inside the model).
	u8 bool
	// sizes, when set, adds an [N,2] orig_target_sizes input of this type.
	sizes onnx.TensorProto_DataType
	meta  map[string]string
	outs  []plantedOut
}

// plantedOut is one planted output.
type plantedOut struct {
	planted
	// int64 casts the output to int64 (exported class labels).
	int64 bool
	// bySizes multiplies the [Q,4] planted boxes by (w,h,w,h) read from
	// the sizes input, per image.
	bySizes bool
	// declared, when set, is the output shape the graph declares (without
	// the batch; -1 for a dynamic dimension). ONNX Runtime reports the
	// shape it infers instead, so only InspectFormat sees it.
	declared []int64
}

// plant writes the model and returns its path.
func plant(t testing.TB, ps plantSpec) string {
	t.Helper()
	g := onnxgraph.NewGraph("planted")
	images := "images"
	if ps.u8 {
		g.AddInput("images", onnx.TensorProto_UINT8, onnxgraph.Shape(ps.input...)...)
		g.AddNode("Cast", []string{"images"}, []string{"images_f"}, onnxgraph.AttrInt("to", int64(onnxgraph.Float)))
		images = "images_f"
	} else {
		g.AddInput("images", onnxgraph.Float, onnxgraph.Shape(ps.input...)...)
	}
	if ps.sizes != 0 {
		g.AddInput("orig_target_sizes", ps.sizes, onnxgraph.Shape(ps.input[0], 2)...)
		g.AddNode("Cast", []string{"orig_target_sizes"}, []string{"sizes_f"}, onnxgraph.AttrInt("to", int64(onnxgraph.Float)))
		g.AddNode("Concat", []string{"sizes_f", "sizes_f"}, []string{"whwh"}, onnxgraph.AttrInt("axis", 1))
		g.AddInitializer(onnxgraph.Int64Tensor("whwh_shape", []int64{3}, []int64{-1, 1, 4}))
		g.AddNode("Reshape", []string{"whwh", "whwh_shape"}, []string{"whwh3"})
	}
	g.AddInitializer(onnxgraph.Int64Tensor("axes", []int64{3}, []int64{1, 2, 3}))
	g.AddInitializer(onnxgraph.FloatTensor("zero", nil, []float32{0}))
	g.AddNode("ReduceSum", []string{images, "axes"}, []string{"sum"}, onnxgraph.AttrInt("keepdims", 1))
	g.AddNode("Mul", []string{"sum", "zero"}, []string{"zeros"})
	for _, o := range ps.outs {
		rank := len(o.dims) + 1
		shape := make([]int64, rank)
		shape[0] = -1
		for i := 1; i < rank; i++ {
			shape[i] = 1
		}
		g.AddInitializer(onnxgraph.Int64Tensor(o.name+"_shape", []int64{int64(rank)}, shape))
		g.AddInitializer(onnxgraph.FloatTensor(o.name+"_value", append([]int64{1}, o.dims...), o.data))
		g.AddNode("Reshape", []string{"zeros", o.name + "_shape"}, []string{o.name + "_zeros"})
		v := o.name + "_planted"
		g.AddNode("Add", []string{o.name + "_zeros", o.name + "_value"}, []string{v})
		if o.bySizes {
			g.AddNode("Mul", []string{v, "whwh3"}, []string{v + "_scaled"})
			v += "_scaled"
		}
		elem := onnxgraph.Float
		if o.int64 {
			elem = onnxgraph.Int64
			g.AddNode("Cast", []string{v}, []string{o.name}, onnxgraph.AttrInt("to", int64(elem)))
		} else {
			g.AddNode("Identity", []string{v}, []string{o.name})
		}
		dims := o.dims
		if o.declared != nil {
			dims = o.declared
		}
		g.AddOutput(o.name, elem, onnxgraph.Shape(append([]int64{ps.input[0]}, dims...)...)...)
	}
	m, err := g.Model(13)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ps.meta {
		m.MetadataProps = append(m.MetadataProps, &onnx.StringStringEntryProto{Key: k, Value: v})
	}
	path := filepath.Join(t.TempDir(), "planted.onnx")
	b, err := onnxgraph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
