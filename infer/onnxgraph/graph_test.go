package onnxgraph

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/osprey-vision/osprey/internal/modroot"
)

// ortLib finds third_party/lib/libonnxruntime.so relative to the module root.
func ortLib(t *testing.T) string {
	t.Helper()
	root, err := modroot.FromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "third_party", "lib", "libonnxruntime.so")
}

func buildAffine(t *testing.T) []byte {
	t.Helper()
	g := NewGraph("affine")
	g.AddInput("x", Float, Sym("N"), Fixed(3))
	g.AddInitializer(FloatTensor("w", []int64{3}, []float32{1, 2, 3}))
	g.AddInitializer(FloatTensor("b", []int64{1}, []float32{0.5}))
	mul := g.Unique("mul")
	g.AddNode("Mul", []string{"x", "w"}, []string{mul})
	g.AddNode("Add", []string{mul, "b"}, []string{"y"})
	g.AddNode("Clip", []string{"y", "", ""}, []string{"y_clip"})
	g.AddNode("Transpose", []string{"y_clip"}, []string{"yt"}, AttrInts("perm", 1, 0))
	g.AddOutput("yt", Float, Fixed(3), Sym("N"))
	m, err := g.Model(0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildRunsInONNXRuntime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "affine.onnx")
	m, err := Unmarshal(buildAffine(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := Save(m, path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if Opset(back) != DefaultOpset || back.IrVersion != IRVersion || ParamCount(back.Graph) != 4 {
		t.Fatalf("opset %d ir %d params %d", Opset(back), back.IrVersion, ParamCount(back.Graph))
	}
	if got := Dims(back.Graph.Input[0]); len(got) != 2 || got[0].String() != "N" || got[1].String() != "3" {
		t.Fatalf("input dims %v", got)
	}

	ort.SetSharedLibraryPath(ortLib(t))
	if !ort.IsInitialized() {
		if err := ort.InitializeEnvironment(); err != nil {
			t.Fatal(err)
		}
	}
	in, err := ort.NewTensor(ort.NewShape(2, 3), []float32{1, 1, 1, -1, 0, 2})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(3, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	s, err := ort.NewAdvancedSession(path, []string{"x"}, []string{"yt"}, []ort.Value{in}, []ort.Value{out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	// y = x*w + 0.5, transposed: column n is sample n.
	want := []float32{1.5, -0.5, 2.5, 0.5, 3.5, 6.5}
	for i, v := range out.GetData() {
		if v != want[i] {
			t.Fatalf("out %v want %v", out.GetData(), want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	good := buildAffine(t)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path, err string
	}{
		{"missing", filepath.Join(dir, "nope.onnx"), "onnxgraph: model file " + filepath.Join(dir, "nope.onnx") + " does not exist: check the path"},
		{"empty", write("empty.onnx", nil), "onnxgraph: model is empty (file " + filepath.Join(dir, "empty.onnx")},
		{"truncated", write("trunc.onnx", good[:len(good)-7]), "truncated or corrupt"},
		{"garbage", write("junk.onnx", []byte("this is not protobuf at all\xff\xff")), "onnxgraph: not a valid ONNX model, truncated or corrupt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(c.path)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err %v, want it to contain %q", err, c.err)
			}
			if !strings.Contains(err.Error(), c.path) {
				t.Fatalf("err %v does not name %s", err, c.path)
			}
		})
	}
}

func TestBuilderErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(g *Graph)
		err   string
	}{
		{"duplicate", func(g *Graph) {
			g.AddInput("x", Float, Fixed(1))
			g.AddNode("Relu", []string{"x"}, []string{"x"})
		}, `onnxgraph: tensor name "x" defined twice in graph "t"`},
		{"use before define", func(g *Graph) {
			g.AddNode("Relu", []string{"x"}, []string{"y"})
		}, `onnxgraph: graph "t": node "y" (Relu) uses "x" before it is defined`},
		{"bad initializer", func(g *Graph) {
			g.AddInitializer(FloatTensor("w", []int64{2, 2}, []float32{1}))
		}, `onnxgraph: tensor "w" has 1 elements, shape [2 2] needs 4`},
		{"missing output", func(g *Graph) {
			g.AddOutput("z", Float)
		}, `onnxgraph: graph "t": output "z" is never computed`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewGraph("t")
			c.build(g)
			_, err := g.Model(0)
			if err == nil || err.Error() != c.err {
				t.Fatalf("err %v, want %q", err, c.err)
			}
		})
	}
}

func TestUniqueAndTensors(t *testing.T) {
	g := NewGraph("t")
	g.AddInput("a", Float)
	if n := g.Unique("a"); n != "a_1" {
		t.Fatalf("got %s", n)
	}
	if n := g.Unique("a"); n != "a_2" {
		t.Fatalf("got %s", n)
	}
	v, err := Int64s(Int32Tensor("i", []int64{2}, []int32{-3, 7}))
	if err != nil || v[0] != -3 || v[1] != 7 {
		t.Fatalf("%v %v", v, err)
	}
	f, err := Floats(FloatTensor("f", []int64{2}, []float32{1.25, -2}))
	if err != nil || f[0] != 1.25 || f[1] != -2 {
		t.Fatalf("%v %v", f, err)
	}
}
