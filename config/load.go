package config

import (
	"encoding"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/osprey-vision/osprey/stages"
)

// FieldError is one problem in a pipeline file.
type FieldError struct {
	File      string
	Line, Col int // 1-based; 0 when the problem has no place in the file
	Path      string
	Msg       string
}

// Error formats as file:line:col: path: message.
func (e FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Col)
	}
	if e.Path == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Path + ": " + e.Msg
}

// Errors is every problem found in a pipeline file, in file order.
type Errors []FieldError

// Error lists one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads, decodes and validates a pipeline file against the components
// in reg. On failure the error is an Errors value listing every problem with
// file:line:col.
func Load(path string, reg *stages.Registry) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read pipeline file: %v", unwrapPathError(err))}}
	}
	return Parse(path, data, reg)
}

// Parse decodes and validates pipeline YAML against the components in reg;
// name is used in error messages and to default the pipeline name.
func Parse(name string, data []byte, reg *stages.Registry) (*Pipeline, error) {
	d := &decoder{file: name, pos: map[string]ast.Node{}, skip: map[string]bool{}}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		d.yamlError("", err)
		return nil, d.errs
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil, Errors{{File: name, Line: 1, Col: 1, Msg: "the file is empty: a pipeline needs at least streams and model"}}
	}
	if len(f.Docs) > 1 {
		d.add(f.Docs[1].Body, "", "a pipeline file holds one YAML document; split pipelines into separate files")
	}
	body := f.Docs[0].Body
	top, ok := mappingValues(unwrapNode(body))
	if !ok {
		d.add(body, "", fmt.Sprintf("expected a mapping of top-level fields, got %s", describe(body)))
		return nil, d.errs
	}
	p := defaults()
	p.File, p.Registry = name, reg
	core := reflect.TypeOf(p)
	coreFields := yamlFields(core)
	var streams, sinks ast.Node
	owned := map[string]ast.Node{}
	for _, kv := range top {
		key := keyString(kv.Key)
		switch _, isStage := reg.StageOwning(key); {
		case key == "streams":
			streams = kv.Value
			d.pos[key] = kv.Value
		case key == "sinks":
			sinks = kv.Value
			d.pos[key] = kv.Value
		case coreFields[key] != nil:
			d.pos[key] = kv.Value
			d.walk(kv.Value, coreFields[key], key)
		case isStage:
			owned[key] = kv.Value
			d.pos[key] = kv.Value
		default:
			d.add(kv.Key, key, unknownKeyMessage(key, topLevelKeys(coreFields, reg)))
		}
	}
	d.decode(body, &p, "")
	d.decodeStreams(&p, streams)
	d.decodeStages(&p, owned)
	d.decodeSinks(&p, sinks)
	if len(d.errs) > 0 {
		d.errs = append(d.errs, d.later...)
		d.sort()
		return nil, d.errs
	}
	d.errs = d.later
	if p.Name == "" {
		p.Name = strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	}
	p.resolveMode()
	p.validate(func(path string, err error) { d.component("", stages.Errorf(path, "%s", err)) })
	env := p.Env()
	for i, s := range p.Streams {
		if s.Config != nil {
			d.component(fmt.Sprintf("streams[%d]", i), s.Source.Spec.Validate(s.Config, env))
		}
	}
	for _, s := range p.Stages {
		d.component("", s.Stage.Spec.Validate(s.Config, env))
	}
	for _, s := range p.Sinks {
		d.component("sinks."+s.Name, s.Sink.Spec.Validate(s.Config, env))
	}
	if len(d.errs) > 0 {
		d.sort()
		return nil, d.errs
	}
	return &p, nil
}

// topLevelKeys lists every key valid at the top of a pipeline file.
func topLevelKeys(core map[string]reflect.Type, reg *stages.Registry) map[string]reflect.Type {
	keys := maps.Clone(core)
	keys["streams"], keys["sinks"] = nil, nil
	for _, st := range reg.Stages() {
		for _, k := range st.Keys {
			keys[k] = nil
		}
	}
	return keys
}

// decode walks n against target's type (unknown keys, positions) and decodes
// it over target's defaults.
func (d *decoder) decode(n ast.Node, target any, path string) {
	if path != "" {
		d.walk(n, reflect.TypeOf(target), path)
	}
	if err := nodeToValue(n, target); err != nil {
		var ye yaml.Error
		// Errors without a position (durations) were already reported by walk.
		if errors.As(err, &ye) || len(d.errs) == 0 {
			d.yamlError(path, err)
		}
	}
}

// decodeStreams hands each streams[] item to the source of its URL scheme.
func (d *decoder) decodeStreams(p *Pipeline, n ast.Node) {
	if n == nil {
		return
	}
	seq, ok := unwrapNode(n).(*ast.SequenceNode)
	if !ok {
		d.add(n, "streams", fmt.Sprintf("expected a list of streams, got %s", describe(n)))
		return
	}
	streamKeys := p.Registry.StreamKeys()
	for i, item := range seq.Values {
		path := fmt.Sprintf("streams[%d]", i)
		d.pos[path] = item
		var head struct {
			ID       string   `yaml:"id"`
			URL      string   `yaml:"url"`
			Weight   int      `yaml:"-"`
			Requires []string `yaml:"-"`
		}
		kvs, ok := mappingValues(unwrapNode(item))
		if !ok {
			d.add(item, path, fmt.Sprintf("expected a mapping with id and url, got %s", describe(item)))
			continue
		}
		// Positions for the id and url checks, also when no source decodes the item.
		for _, kv := range kvs {
			key := keyString(kv.Key)
			d.pos[path+"."+key] = kv.Value
			if key == "weight" {
				// The pipeline's own: the stream's share of the detector.
				d.skip[path+".weight"] = true
				var w int
				if err := nodeToValue(kv.Value, &w); err != nil || w < 1 || w > 100 {
					d.add(kv.Value, path+".weight", fmt.Sprintf("must be a whole number from 1 to 100 (its share of the detector against weight-1 streams), got %s", kv.Value.String()))
				} else {
					head.Weight = w
				}
				continue
			}
			if key == "requires" {
				// The pipeline's own: fleet placement labels.
				d.skip[path+".requires"] = true
				d.walk(kv.Value, reflect.TypeOf([]string{}), path+".requires")
				if err := nodeToValue(kv.Value, &head.Requires); err != nil {
					d.add(kv.Value, path+".requires", fmt.Sprintf("must be a list of labels (requires: [gpu]), got %s", kv.Value.String()))
				}
				continue
			}
			if _, ok := streamKeys[key]; ok {
				// A stage's per-stream override: the stage decodes it, not the source.
				d.skip[path+"."+key] = true
				d.overrides = append(d.overrides, override{path: path + "." + key, key: key, node: kv.Value, index: i})
			}
		}
		_ = nodeToValue(item, &head)
		s := Stream{ID: head.ID, URL: head.URL, Weight: head.Weight, Requires: head.Requires}
		if head.URL == "" {
			d.addLater(item, path+".url", "required: file:///path.mp4, rtsp://host/path, v4l2:///dev/video0, gst:<pipeline> or test://")
			p.Streams = append(p.Streams, s)
			continue
		}
		src, ok := p.Registry.Source(Scheme(head.URL))
		if !ok {
			d.addLater(d.pos[path+".url"], path+".url", fmt.Sprintf("unsupported scheme %q: use one of %s", Scheme(head.URL), schemeList(p.Registry)))
			p.Streams = append(p.Streams, s)
			continue
		}
		s.Source, s.Config = src, src.Spec.Defaults()
		d.decode(item, s.Config, path)
		p.Streams = append(p.Streams, s)
	}
}

func schemeList(reg *stages.Registry) string {
	var out []string
	for _, s := range reg.Schemes() {
		if s == "gst" {
			out = append(out, "gst:<pipeline>")
			continue
		}
		out = append(out, s+"://")
	}
	return strings.Join(out, ", ")
}

// decodeStages decodes each stage plugin's keys into its config; a plugin
// whose keys are all absent keeps its defaults.
func (d *decoder) decodeStages(p *Pipeline, owned map[string]ast.Node) {
	for _, st := range p.Registry.Stages() {
		cfg := st.Spec.Defaults()
		sec := Section{Name: st.Name, Config: cfg, Stage: st}
		v := reflect.ValueOf(cfg).Elem()
		for _, key := range st.Keys {
			n, ok := owned[key]
			if !ok {
				continue
			}
			sec.Present = true
			field, ok := fieldByKey(v, key)
			if !ok {
				d.add(n, key, fmt.Sprintf("the %s stage claims this key but its config has no %q field (a bug in that component)", st.Name, key))
				continue
			}
			d.decode(n, field.Addr().Interface(), key)
		}
		for _, o := range d.overrides {
			if !slices.Contains(st.StreamKeys, o.key) {
				continue
			}
			ov, ok := cfg.(stages.StreamOverrider)
			if !ok {
				d.add(o.node, o.path, fmt.Sprintf("the %s stage lists %q as a stream key but its config takes no overrides (a bug in that component)", st.Name, o.key))
				continue
			}
			d.decode(o.node, ov.OverrideFor(o.key, p.Streams[o.index].ID), o.path)
		}
		p.Stages = append(p.Stages, sec)
	}
}

// override is a stage key found inside a streams[] item.
type override struct {
	path, key string
	node      ast.Node
	index     int
}

// decodeSinks hands each key under `sinks:` to the sink registered for it.
func (d *decoder) decodeSinks(p *Pipeline, n ast.Node) {
	if n == nil {
		return
	}
	if _, isNull := n.(*ast.NullNode); isNull {
		return
	}
	m, ok := mappingValues(unwrapNode(n))
	if !ok {
		d.add(n, "sinks", fmt.Sprintf("expected a mapping of sinks, got %s", describe(n)))
		return
	}
	keys := map[string]reflect.Type{}
	for _, k := range p.Registry.SinkKeys() {
		keys[k] = nil
	}
	for _, kv := range m {
		key := keyString(kv.Key)
		path := "sinks." + key
		sk, ok := p.Registry.Sink(key)
		if !ok {
			d.add(kv.Key, path, unknownKeyMessage(key, keys))
			continue
		}
		d.pos[path] = kv.Value
		cfg := sk.Spec.Defaults()
		if _, empty := kv.Value.(*ast.NullNode); !empty {
			d.decode(kv.Value, cfg, path)
		}
		p.Sinks = append(p.Sinks, Section{Name: key, Config: cfg, Present: true, Sink: sk})
	}
}

// fieldByKey finds the struct field of v whose yaml key is key.
func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// unwrapNode looks through tags and anchors to the value node.
func unwrapNode(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.TagNode:
			n = v.Value
		case *ast.AnchorNode:
			n = v.Value
		default:
			return n
		}
	}
}

type decoder struct {
	file string
	errs Errors
	// later are problems that do not stop the semantic checks (a stream
	// whose scheme has no source): reported with them, all at once.
	later Errors
	// pos maps a field path (streams[0].url) to its value's node.
	pos map[string]ast.Node
	// skip holds paths walk leaves to another component (streams[0].motion).
	skip map[string]bool
	// overrides are the stages' per-stream keys found in streams[] items.
	overrides []override
}

func (d *decoder) add(n ast.Node, path, msg string) {
	e := FieldError{File: d.file, Path: path, Msg: msg}
	if n != nil {
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Col = tk.Position.Line, tk.Position.Column
		}
	}
	d.errs = append(d.errs, e)
}

// addLater records a problem reported together with the semantic checks.
func (d *decoder) addLater(n ast.Node, path, msg string) {
	errs := d.errs
	d.errs = nil
	d.add(n, path, msg)
	d.later = append(d.later, d.errs...)
	d.errs = errs
}

func (d *decoder) sort() {
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// yamlError records a goccy error (syntax or type) with its position.
func (d *decoder) yamlError(path string, err error) {
	var ye yaml.Error
	if errors.As(err, &ye) {
		e := FieldError{File: d.file, Path: path, Msg: cleanYAMLMessage(ye.GetMessage())}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Col = tk.Position.Line, tk.Position.Column
			if p := d.pathAt(tk.Position.Line, tk.Position.Column); p != "" {
				e.Path = p
			}
		}
		d.errs = append(d.errs, e)
		return
	}
	d.errs = append(d.errs, FieldError{File: d.file, Path: path, Msg: err.Error()})
}

// pathAt finds the field whose value starts at line:col.
func (d *decoder) pathAt(line, col int) string {
	best := ""
	for p, n := range d.pos {
		tk := n.GetToken()
		if tk != nil && tk.Position != nil && tk.Position.Line == line && tk.Position.Column == col {
			if len(p) > len(best) {
				best = p
			}
		}
	}
	return best
}

var (
	goccyNoise    = regexp.MustCompile(`^\[\d+:\d+\] `)
	goStructField = regexp.MustCompile(`into (Go struct field )?[A-Za-z0-9_.\[\]]+ of type `)
)

func cleanYAMLMessage(m string) string {
	m = goccyNoise.ReplaceAllString(m, "")
	m = goStructField.ReplaceAllString(m, "into ")
	if strings.Contains(m, "time: invalid duration") || strings.Contains(m, "time: unknown unit") || strings.Contains(m, "time: missing unit") {
		m += ` (write a duration like "200ms", "1.5s" or "2m")`
	}
	return m
}

var (
	durationType        = reflect.TypeOf(time.Duration(0))
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// walk checks node against type t, recording unknown keys (with the closest
// valid name) and remembering every field's node for error positions.
func (d *decoder) walk(n ast.Node, t reflect.Type, path string) {
	if n == nil {
		return
	}
	switch v := n.(type) {
	case *ast.TagNode:
		d.walk(v.Value, t, path)
		return
	case *ast.AnchorNode:
		d.walk(v.Value, t, path)
		return
	case *ast.AliasNode, *ast.NullNode:
		return
	}
	if path != "" {
		d.pos[path] = n
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		// goccy reports bad durations without a position: check them here.
		if sn, ok := n.(*ast.StringNode); ok {
			if _, err := time.ParseDuration(sn.Value); err != nil {
				d.add(n, path, cleanYAMLMessage(err.Error()))
			}
		}
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		// goccy reports a value's own parse error (an unknown mode or
		// scheduling class) without a position too: parse it here.
		if sn, ok := n.(*ast.StringNode); ok {
			if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(sn.Value)); err != nil {
				d.add(n, path, err.Error())
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := mappingValues(n)
		if !ok {
			d.add(n, path, fmt.Sprintf("expected a mapping of %s fields, got %s", nameOr(path, "top-level"), describe(n)))
			return
		}
		fields := yamlFields(t)
		for _, kv := range m {
			key := keyString(kv.Key)
			ft, known := fields[key]
			child := join(path, key)
			if d.skip[child] {
				continue
			}
			if !known {
				d.add(kv.Key, child, unknownKeyMessage(key, fields))
				continue
			}
			d.pos[child] = kv.Value
			d.walk(kv.Value, ft, child)
		}
	case reflect.Slice, reflect.Array:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			if t.Elem().Kind() == reflect.Uint8 { // []byte from a string
				return
			}
			d.add(n, path, fmt.Sprintf("expected a list, got %s", describe(n)))
			return
		}
		if t.Kind() == reflect.Array && len(seq.Values) != t.Len() {
			d.add(n, path, fmt.Sprintf("expected exactly %d values, got %d", t.Len(), len(seq.Values)))
		}
		for i, e := range seq.Values {
			d.walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		m, ok := mappingValues(n)
		if !ok {
			d.add(n, path, fmt.Sprintf("expected a mapping, got %s", describe(n)))
			return
		}
		for _, kv := range m {
			d.walk(kv.Value, t.Elem(), join(path, keyString(kv.Key)))
		}
	}
}

func mappingValues(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch v := n.(type) {
	case *ast.MappingNode:
		return v.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}, true
	}
	return nil, false
}

func keyString(k ast.MapKeyNode) string {
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	return strings.Trim(k.String(), `"'`)
}

func describe(n ast.Node) string {
	switch n.(type) {
	case *ast.SequenceNode:
		return "a list"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	}
	return fmt.Sprintf("%q", n.String())
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func nameOr(path, alt string) string {
	if path == "" {
		return alt
	}
	return path
}

// yamlFields maps YAML keys to field types, following inline fields.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range yamlFields(ft) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func unknownKeyMessage(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", 1<<30
	for _, k := range names {
		if dd := levenshtein(key, k); dd < bestD {
			best, bestD = k, dd
		}
	}
	if best != "" && bestD <= max(2, len(key)/3) {
		return fmt.Sprintf("unknown field %q: did you mean %q?", key, best)
	}
	return fmt.Sprintf("unknown field %q: valid fields here are %s", key, strings.Join(names, ", "))
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// component records a component's validation problems, found under section
// (a streams[] item, "sinks.nats", or "" for stages, whose keys are top
// level). A stages.FieldError is placed at its path below section, at the
// deepest field of the file that path names; any other error at section.
func (d *decoder) component(section string, err error) {
	for _, e := range stages.Leaves(stages.Under(section, err)) {
		var fe *stages.FieldError
		path, msg := section, e.Error()
		if errors.As(e, &fe) {
			path = fe.Path
		}
		out := FieldError{File: d.file, Msg: msg}
		if _, node := d.deepest(path); node != nil {
			if tk := node.GetToken(); tk != nil && tk.Position != nil {
				out.Line, out.Col = tk.Position.Line, tk.Position.Column
			}
		}
		d.errs = append(d.errs, out)
	}
}

// deepest returns the longest prefix of path that names a node in the file.
func (d *decoder) deepest(path string) (string, ast.Node) {
	for p := path; p != ""; {
		if n, ok := d.pos[p]; ok {
			return p, n
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return "", nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
