package config

import (
	"encoding"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
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

// Load reads, decodes and validates a pipeline file. On failure the error is
// an Errors value listing every problem with file:line:col.
func Load(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read pipeline file: %v", unwrapPathError(err))}}
	}
	return Parse(path, data)
}

// Parse decodes and validates pipeline YAML; name is used in error messages
// and to default the pipeline name.
func Parse(name string, data []byte) (*Pipeline, error) {
	d := &decoder{file: name, pos: map[string]ast.Node{}}
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
	p := defaults()
	d.walk(body, reflect.TypeOf(p), "")
	if err := nodeToValue(body, &p); err != nil {
		var ye yaml.Error
		// Errors without a position (durations) were already reported by walk.
		if errors.As(err, &ye) || len(d.errs) == 0 {
			d.yamlError("", err)
		}
	}
	if len(d.errs) > 0 {
		d.sort()
		return nil, d.errs
	}
	// A sink is on when its key is present; defaults were pre-filled for all.
	if _, ok := d.pos["sinks.nats"]; !ok {
		p.Sinks.NATS = nil
	}
	if _, ok := d.pos["sinks.preview"]; !ok {
		p.Sinks.Preview = nil
	}
	if _, ok := d.pos["sinks.jsonl"]; !ok {
		p.Sinks.JSONL = nil
	}
	if _, ok := d.pos["sinks.stdout"]; !ok {
		p.Sinks.Stdout = nil
	}
	p.File = name
	if p.Name == "" {
		p.Name = strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	}
	for i := range p.Streams {
		p.Streams[i].ApplyDefaults()
	}
	p.resolveMode()
	p.validate(d.component)
	if len(d.errs) > 0 {
		d.sort()
		return nil, d.errs
	}
	return &p, nil
}

type decoder struct {
	file string
	errs Errors
	// pos maps a field path (streams[0].url) to its value's node.
	pos map[string]ast.Node
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

// sectionError is a component's own validation error, found under section.
type sectionError struct {
	section string
	err     error
}

func (e sectionError) Error() string { return e.err.Error() }

// addAll reports each leaf of a component's (errors.Join) validation error.
func addAll(section string, err error, add func(string, error)) {
	for _, e := range flatten(err) {
		add(section, sectionError{section, e})
	}
}

// component records a validation error. The pipeline's own errors carry
// their exact path. A component's error (sectionError) may start with a
// package prefix ("natsink: ") and a field path relative to its section
// ("url: ..." or "jetstream.stream ...") or an absolute one ("model.path is
// empty"); it is placed at the deepest field of the file that it names.
func (d *decoder) component(path string, err error) {
	msg := err.Error()
	var se sectionError
	if errors.As(err, &se) {
		msg = stripPackagePrefix(se.err.Error())
		field := leadingField.FindString(msg)
		switch {
		case field != "" && d.has(join(se.section, field)):
			path, msg = join(se.section, field), join(se.section, msg)
		case field != "" && d.has(field):
			path = field
		default:
			path = se.section
			if se.section != "" {
				msg = se.section + ": " + msg
			}
		}
	} else if path != "" {
		msg = path + ": " + msg
	}
	fe := FieldError{File: d.file, Msg: msg}
	if _, node := d.deepest(path); node != nil {
		if tk := node.GetToken(); tk != nil && tk.Position != nil {
			fe.Line, fe.Col = tk.Position.Line, tk.Position.Column
		}
	}
	d.errs = append(d.errs, fe)
}

// has reports whether path, or a parent of it, names a node in the file.
func (d *decoder) has(path string) bool {
	p, _ := d.deepest(path)
	return p != "" && (p == path || strings.HasPrefix(path, p))
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

var (
	packagePrefix = regexp.MustCompile(`^(natsink|preview|infer|capture|track|analytics|governor|config): `)
	leadingField  = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\[\d+\])?(\.[a-z_][a-z0-9_]*(\[\d+\])?)*`)
)

func stripPackagePrefix(m string) string {
	for {
		s := packagePrefix.ReplaceAllString(m, "")
		if s == m {
			return m
		}
		m = s
	}
}

// flatten splits errors.Join trees into their leaves.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
