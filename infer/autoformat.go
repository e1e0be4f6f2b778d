package infer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/advancedclimatesystems/gonnx/onnx"
	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
)

// FormatAuto (or an empty Config.Format) detects the format from the
// model's metadata and its outputs' names and shapes.
const FormatAuto = "auto"

// modelMeta is what a model's metadata_props say about its format.
type modelMeta struct {
	props map[string]string
	// names are the class labels of an Ultralytics or YOLOv5 export.
	names []string
	// imgW, imgH are the export's input size (0 when absent).
	imgW, imgH int
	task       string
	// kpts is a pose export's keypoint layout (kpt_shape [K,D]).
	kpts keypointLayout
	// ultralytics says the metadata comes from an Ultralytics export.
	ultralytics bool
	// problem describes metadata that was present but unreadable.
	problem string
}

// ModelProto field numbers read by readMetadata.
const protoMetadataProps = 14

// readMetadata reads a model file's metadata_props without decoding its
// graph: it walks the top-level protobuf fields and skips all but field
// 14, so a large model costs one sequential read and no big allocation.
func readMetadata(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("infer: model %s: %w", path, err)
	}
	defer f.Close()
	bad := func(err error) error {
		return fmt.Errorf("infer: model %s is not a readable ONNX model (%v): re-export or re-import it", path, err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	props := map[string]string{}
	for {
		tag, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return props, nil
		}
		if err != nil {
			return nil, bad(err)
		}
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		switch typ {
		case protowire.VarintType:
			_, err = binary.ReadUvarint(r)
		case protowire.Fixed64Type:
			_, err = r.Discard(8)
		case protowire.Fixed32Type:
			_, err = r.Discard(4)
		case protowire.BytesType:
			var n uint64
			if n, err = binary.ReadUvarint(r); err != nil {
				break
			}
			if num != protoMetadataProps {
				_, err = r.Discard(int(n))
				break
			}
			if n > 64<<20 {
				return nil, bad(fmt.Errorf("metadata entry of %d bytes", n))
			}
			buf := make([]byte, n)
			if _, err = io.ReadFull(r, buf); err != nil {
				break
			}
			var e onnx.StringStringEntryProto
			if err = proto.Unmarshal(buf, &e); err == nil {
				props[e.Key] = e.Value
			}
		default:
			err = fmt.Errorf("unexpected wire type %d for field %d", typ, num)
		}
		if err != nil {
			return nil, bad(err)
		}
	}
}

// parseMeta reads the keys Ultralytics (and the YOLOv5 repository's
// export) write: names ("{0: 'person', ...}"), imgsz ("[640, 640]", height
// then width), stride and task.
func parseMeta(props map[string]string) modelMeta {
	m := modelMeta{props: props, task: props["task"]}
	m.ultralytics = strings.Contains(props["author"], "Ultralytics") || (props["names"] != "" && props["stride"] != "")
	if s := props["names"]; s != "" {
		names, err := parsePyNames(s)
		if err != nil {
			m.problem = fmt.Sprintf("metadata names unreadable (%v)", err)
		} else {
			m.names = names
		}
	}
	switch nums := pyInts(props["imgsz"]); len(nums) {
	case 1:
		m.imgW, m.imgH = nums[0], nums[0]
	case 2:
		m.imgH, m.imgW = nums[0], nums[1]
	}
	if nums := pyInts(props["kpt_shape"]); len(nums) == 2 && nums[0] <= 1000 && (nums[1] == 2 || nums[1] == 3) {
		m.kpts = keypointLayout{n: nums[0], dim: nums[1]}
	} else if props["kpt_shape"] != "" {
		m.problem = fmt.Sprintf("metadata kpt_shape %q is not [K, 2] or [K, 3]", props["kpt_shape"])
	}
	return m
}

// pyInts reads the positive integers of a Python list or tuple ("[640, 640]").
func pyInts(s string) []int {
	var nums []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '[' || r == ']' || r == ',' || r == ' ' || r == '(' || r == ')' }) {
		if v, err := strconv.Atoi(f); err == nil && v > 0 {
			nums = append(nums, v)
		}
	}
	return nums
}

// pyKey matches a Python dict key ("0:") or list position.
var pyKey = regexp.MustCompile(`^\s*(\d+)\s*:\s*`)

// parsePyNames parses the Python repr of a class-name dict {0: 'a', 1: "b's"}
// or list ['a', 'b']. Missing ids become "class N".
func parsePyNames(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || !((s[0] == '{' && s[len(s)-1] == '}') || (s[0] == '[' && s[len(s)-1] == ']')) {
		return nil, fmt.Errorf("not a Python dict or list: %.40q", s)
	}
	dict := s[0] == '{'
	rest := s[1 : len(s)-1]
	byID := map[int]string{}
	maxID := -1
	for i := 0; ; i++ {
		rest = strings.TrimLeft(rest, " \t\n")
		if rest == "" {
			break
		}
		id := i
		if dict {
			m := pyKey.FindStringSubmatch(rest)
			if m == nil {
				return nil, fmt.Errorf("expected an integer key at %.20q", rest)
			}
			id, _ = strconv.Atoi(m[1])
			rest = rest[len(m[0]):]
		}
		name, n, err := pyString(rest)
		if err != nil {
			return nil, err
		}
		byID[id] = name
		maxID = max(maxID, id)
		rest = strings.TrimLeft(rest[n:], " \t\n")
		if rest != "" {
			if rest[0] != ',' {
				return nil, fmt.Errorf("expected a comma at %.20q", rest)
			}
			rest = rest[1:]
		}
	}
	if maxID < 0 || maxID > 100000 {
		return nil, fmt.Errorf("%d names", maxID+1)
	}
	out := make([]string, maxID+1)
	for i := range out {
		if n, ok := byID[i]; ok {
			out[i] = n
		} else {
			out[i] = fmt.Sprintf("class %d", i)
		}
	}
	return out, nil
}

// pyString reads one quoted Python string literal at the start of s and
// returns it with the number of bytes it took.
func pyString(s string) (string, int, error) {
	if s == "" || (s[0] != '\'' && s[0] != '"') {
		return "", 0, fmt.Errorf("expected a quoted name at %.20q", s)
	}
	q := s[0]
	var sb strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return sb.String(), i + 1, nil
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'n':
				sb.WriteByte('\n')
			case 't':
				sb.WriteByte('\t')
			case 'x', 'u':
				width := 2
				if e == 'u' {
					width = 4
				}
				if i+width >= len(s) {
					return "", 0, fmt.Errorf("short escape in %.20q", s)
				}
				v, err := strconv.ParseUint(s[i+1:i+1+width], 16, 32)
				if err != nil {
					return "", 0, fmt.Errorf("bad escape in %.20q", s)
				}
				sb.WriteRune(rune(v))
				i += width
			default:
				sb.WriteByte(e)
			}
		default:
			sb.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated name %.20q", s)
}

// autoOrder is the order auto-detection tries formats in: the most
// specific shapes first, so a loose rule never claims a model a strict one
// fits (a DETR's [N,Q,4] boxes with [N,Q,C] logits also pass SSD's bind
// when the boxes output is named "boxes").
var autoOrder = []string{"blazeface", "ssd", "detr", "yolo-end2end", "yolov8", "yolox", "yolov5", "detr (one [N,Q,4+C] output)"}

// guessInput is what guessFormat knows about a model.
type guessInput struct {
	path string
	ins  modelInputs
	outs []ort.InputOutputInfo
	meta modelMeta
	detr DETROptions
}

// guessFormat picks the first format in autoOrder that fits, with the
// reason; otherwise an error listing the outputs and why each format
// did not fit.
func guessFormat(g guessInput) (format, reason string, err error) {
	var tried []string
	nc := len(g.meta.names)
	for _, name := range autoOrder {
		format := strings.Fields(name)[0]
		spec := formats[format]
		_, w, h, _ := imageGeometry(g.ins.image, spec, g.meta)
		dec, err := bindDecoder(spec, g.detr, g.meta, g.outs, w, h, g.ins.sizes.Name != "")
		if err == nil {
			reason, err = fits(name, dec, g, w, h, nc)
		}
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", name, err))
			continue
		}
		if g.meta.ultralytics {
			reason += fmt.Sprintf("; Ultralytics metadata: task %s, %d names", orDash(g.meta.task), nc)
		}
		return format, reason, nil
	}
	msg := fmt.Sprintf("infer: model %s: model.format auto found no format that fits its outputs %s (inputs %s)", g.path, outputsString(g.outs), inputsString(g.ins))
	if g.meta.task != "" && g.meta.task != "detect" && g.meta.task != "pose" {
		msg += fmt.Sprintf("; its metadata says task %s, and only detect and pose models are decoded", g.meta.task)
	}
	return "", "", fmt.Errorf("%s; tried %s: set model.format (and model.detr for a DETR variant) or re-export the model as docs/detect.md describes", msg, strings.Join(tried, "; "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fits applies the checks beyond a decoder's bind that keep auto-detection
// from claiming look-alike layouts, and returns the reason it fits.
func fits(name string, dec decoder, g guessInput, w, h, nc int) (string, error) {
	o := g.outs[0]
	s := o.Dimensions
	grid := yoloGrid(w, h)
	switch name {
	case "blazeface":
		return fmt.Sprintf("score and box+6-keypoint outputs over the %d anchors of a %dx%d input (MediaPipe BlazeFace)", len(blazefaceAnchors(w, h)), w, h), nil
	case "ssd":
		d := dec.(*ssdDecoder)
		bx := g.outs[d.boxes].Dimensions
		if len(bx) == 3 && bx[1] <= end2endMaxQueries {
			// Fixed SSD heads have thousands of anchors; few or a dynamic
			// count are a DETR's queries.
			return "", fmt.Errorf("%s boxes: a DETR's queries, not SSD anchors", dimWord(bx[1]))
		}
		return fmt.Sprintf("score output %s %s and box output %s %s (TensorFlow SSD as `pipeline model import` writes it)",
			g.outs[d.scores].Name, shapeString(g.outs[d.scores].Dimensions), g.outs[d.boxes].Name, shapeString(bx)), nil
	case "detr":
		d := dec.(*detrDecoder)
		if d.layout == detrJoined {
			return "", errors.New("one [N,Q,4+C] output is tried after the YOLO layouts")
		}
		return d.describe(), nil
	case "yolo-end2end":
		if s[1] > end2endMaxQueries {
			return "", fmt.Errorf("%d rows: too many for end-to-end queries", s[1])
		}
		r := fmt.Sprintf("one output %s %s: x1,y1,x2,y2,score,class", o.Name, shapeString(s))
		if g.meta.kpts.n > 0 {
			r += fmt.Sprintf(", %d keypoints of %d values", g.meta.kpts.n, g.meta.kpts.dim)
		}
		return r + " per query (YOLOv10/YOLO26 end-to-end)", nil
	case "yolov8":
		kw := int64(g.meta.kpts.width())
		if nc > 0 && s[1] != int64(4+nc)+kw {
			return "", fmt.Errorf("%d rows, metadata has %d names (4+%d+%d keypoint values expected)", s[1], nc, nc, kw)
		}
		r := fmt.Sprintf("one output %s %s: cx,cy,w,h then %d class rows per anchor", o.Name, shapeString(s), s[1]-4-kw)
		if kw > 0 {
			r += fmt.Sprintf(" then %d keypoints of %d values", g.meta.kpts.n, g.meta.kpts.dim)
		}
		return r + " (Ultralytics YOLOv8/v11)", nil
	case "yolox":
		if s[1] != int64(grid) {
			return "", fmt.Errorf("%s anchors, not the %d cells of a %dx%d input at strides 8/16/32", dimWord(s[1]), grid, w, h)
		}
		return fmt.Sprintf("one output %s %s: one anchor per cell of a %dx%d input at strides 8/16/32 (YOLOX)", o.Name, shapeString(s), w, h), nil
	case "yolov5":
		if s[1] != int64(3*grid) && !(nc > 0 && s[2] == int64(5+nc)) {
			return "", fmt.Errorf("%s anchors, not the 3 per cell (%d) of a %dx%d input", dimWord(s[1]), 3*grid, w, h)
		}
		return fmt.Sprintf("one output %s %s: 3 anchors per cell, cx,cy,w,h,objectness,%d classes (YOLOv5)", o.Name, shapeString(s), s[2]-5), nil
	default: // detr, joined
		d := dec.(*detrDecoder)
		if d.layout != detrJoined {
			return "", errors.New("not one output")
		}
		if nc > 0 && s[2] != int64(4+nc) {
			return "", fmt.Errorf("%d columns, metadata has %d names (4+%d expected)", s[2], nc, nc)
		}
		if nc == 0 && (s[1] < 0 || s[1] > end2endMaxQueries) {
			// A dynamic row count is more likely a dynamic YOLO export.
			return "", fmt.Errorf("%s rows and no metadata names: not recognisably DETR queries", dimWord(s[1]))
		}
		return d.describe(), nil
	}
}

// dimWord writes a declared dimension for a message.
func dimWord(d int64) string {
	if d < 0 {
		return "a dynamic number of"
	}
	return strconv.FormatInt(d, 10)
}

// yoloGrid is the number of cells of a w x h input at strides 8, 16, 32.
func yoloGrid(w, h int) int {
	n := 0
	for _, s := range []int{8, 16, 32} {
		n += (w / s) * (h / s)
	}
	return n
}

// bindDecoder makes spec's decoder, gives it what the configuration and
// metadata say beyond the outputs, and binds it to the outputs.
func bindDecoder(spec *formatSpec, detr DETROptions, meta modelMeta, outs []ort.InputOutputInfo, w, h int, sizesInput bool) (decoder, error) {
	dec := spec.newDecoder()
	switch d := dec.(type) {
	case *detrDecoder:
		d.user, d.sizesInput = detr, sizesInput
	case *yolov8Decoder:
		d.kpts = meta.kpts
	case *end2endDecoder:
		d.kpts = meta.kpts
	}
	return dec, dec.bind(outs, w, h)
}

func inputsString(mi modelInputs) string {
	s := fmt.Sprintf("%s %s", mi.image.Name, shapeString(mi.image.Dimensions))
	if mi.sizes.Name != "" {
		s += fmt.Sprintf(", %s %s", mi.sizes.Name, shapeString(mi.sizes.Dimensions))
	}
	return s
}

// FormatInfo is what InspectFormat finds in a model file.
type FormatInfo struct {
	// Format is the detected format ("" when none fits).
	Format string
	// Reason says why: the outputs' layout and the metadata that decided.
	Reason string
	// Labels are the class names from the model's metadata (nil if none).
	Labels []string
	// Resize is the MetaResize kernel Preprocess reproduces ("" when the
	// model declares none and OpenCV resizes).
	Resize string
	// Err explains why no format fits (nil when Format is set).
	Err error
}

// InspectFormat detects a model file's format the way Open does under
// model.format auto, reading the file directly (no ONNX Runtime needed).
// The error is for a file that is no readable model; a readable model
// that fits no format reports it in FormatInfo.Err.
func InspectFormat(path string, detr DETROptions) (FormatInfo, error) {
	m, err := onnxgraph.Load(path)
	if err != nil {
		return FormatInfo{}, err
	}
	return InspectModel(path, m, detr), nil
}

// InspectModel is InspectFormat for a model already loaded from path.
func InspectModel(path string, m *onnx.ModelProto, detr DETROptions) FormatInfo {
	props := map[string]string{}
	for _, p := range m.MetadataProps {
		props[p.Key] = p.Value
	}
	inits := map[string]bool{}
	for _, t := range m.Graph.Initializer {
		inits[t.Name] = true
	}
	var ins, outs []ort.InputOutputInfo
	for _, in := range m.Graph.Input {
		if !inits[in.Name] {
			ins = append(ins, protoInfo(in))
		}
	}
	for _, o := range m.Graph.Output {
		outs = append(outs, protoInfo(o))
	}
	return inspect(path, ins, outs, props, detr)
}

// inspect runs auto-detection on a model's declared inputs and outputs.
func inspect(path string, ins, outs []ort.InputOutputInfo, props map[string]string, detr DETROptions) FormatInfo {
	meta := parseMeta(props)
	fi := FormatInfo{Labels: meta.names}
	if k, err := metaResizeKernel(props); err != nil {
		fi.Resize = "opencv (" + err.Error() + ")"
	} else if k != nil {
		fi.Resize = k.String()
	}
	mi, err := splitInputs(path, ins)
	if err == nil {
		err = checkOutputs(path, outs)
	}
	if err == nil && len(outs) == 0 {
		err = fmt.Errorf("infer: model %s has no outputs", path)
	}
	if err == nil {
		fi.Format, fi.Reason, err = guessFormat(guessInput{path: path, ins: mi, outs: outs, meta: meta, detr: detr})
	}
	fi.Err = err
	return fi
}

// protoInfo describes a graph input or output as ONNX Runtime would.
func protoInfo(vi *onnx.ValueInfoProto) ort.InputOutputInfo {
	info := ort.InputOutputInfo{Name: vi.Name, OrtValueType: ort.ONNXTypeTensor}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		info.OrtValueType = ort.ONNXTypeUnknown
		return info
	}
	// ONNX Runtime's element type enum has the ONNX TensorProto values.
	info.DataType = ort.TensorElementDataType(tt.ElemType)
	for _, d := range onnxgraph.Dims(vi) {
		if d.Param != "" {
			info.Dimensions = append(info.Dimensions, -1)
		} else {
			info.Dimensions = append(info.Dimensions, d.Value)
		}
	}
	return info
}

// bindModel settles the format (detecting it under auto), then binds the
// inputs, outputs and labels; Open calls it before creating the session.
func (d *Detector) bindModel(ins, outs []ort.InputOutputInfo) error {
	cfg := &d.cfg
	props, err := readMetadata(cfg.Path)
	if err != nil {
		return err
	}
	meta := parseMeta(props)
	if meta.problem != "" {
		d.log.Warn("model metadata ignored", "model", cfg.Path, "problem", meta.problem)
	}
	if d.tfResize, err = metaResizeKernel(props); err != nil {
		d.log.Warn("model metadata ignored: OpenCV resizes instead; re-import the model", "model", cfg.Path, "problem", err)
	}
	mi, err := splitInputs(cfg.Path, ins)
	if err != nil {
		return err
	}
	if err := checkOutputs(cfg.Path, outs); err != nil {
		return err
	}
	if cfg.Format == "" || cfg.Format == FormatAuto {
		if cfg.Format, d.reason, err = guessFormat(guessInput{path: cfg.Path, ins: mi, outs: outs, meta: meta, detr: cfg.DETR}); err != nil {
			return err
		}
	} else {
		d.reason = "model.format " + cfg.Format
	}
	spec := *formats[cfg.Format]
	d.spec = &spec
	if mi.sizes.Name != "" && !(cfg.Format == "detr") {
		return fmt.Errorf("infer: model %s has an input %s %s besides the image: only detr models take one (orig_target_sizes); use model.format detr or re-export the model", cfg.Path, mi.sizes.Name, shapeString(mi.sizes.Dimensions))
	}
	d.layout, d.params.inW, d.params.inH, d.modelBatch = imageGeometry(mi.image, d.spec, meta)
	if d.u8 = mi.image.DataType == ort.TensorElementDataTypeUint8; d.u8 && !d.spec.pixelRange() {
		return fmt.Errorf("infer: model %s takes uint8 pixels, but format %s feeds the model scaled floats: use the FP32 model or one quantised for this format's value range", cfg.Path, cfg.Format)
	}
	d.inNames, d.sizes = []string{mi.image.Name}, mi.sizes
	if mi.sizes.Name != "" {
		d.inNames = append(d.inNames, mi.sizes.Name)
	}
	d.outNames = d.outNames[:0]
	for _, o := range outs {
		d.outNames = append(d.outNames, o.Name)
	}
	if d.dec, err = bindDecoder(d.spec, cfg.DETR, meta, outs, d.params.inW, d.params.inH, mi.sizes.Name != ""); err != nil {
		return fmt.Errorf("infer: model %s does not fit format %s: %v; the model has outputs %s (choose the format that matches the model, or model.format auto)", cfg.Path, cfg.Format, err, outputsString(outs))
	}
	if dd, ok := d.dec.(*detrDecoder); ok {
		if dd.opts.Normalize == "imagenet" {
			spec.mean, spec.std = imagenetMean, imagenetStd
		}
		if strings.HasPrefix(d.reason, "model.format") {
			d.reason += ": " + dd.describe()
		}
		// COCO class-column counts name their label list.
		switch dd.classes() {
		case 90:
			spec.labels, spec.coco = COCO90, COCO90
		case 91:
			spec.labels, spec.coco = COCO91, COCO91
		}
	}
	if cfg.Labels == "" && meta.names != nil {
		d.labels = meta.names
		return nil
	}
	d.labels, err = loadLabels(d.spec, cfg.Labels)
	return err
}
