package config

import (
	"fmt"
	"reflect"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// nodeToValue is yaml.NodeToValue made safe for hostile files: goccy/go-yaml
// v1.19.2 panics ("reflect: array index out of range") when a fixed-size
// array such as a point [x, y] is given more values. The panic becomes an
// error naming the list's line:col. It is a plain error on purpose: walk has
// already reported that list with its field path, and Parse adds plain
// decoder errors only when walk found nothing.
func nodeToValue(n ast.Node, v any) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if bad, want := arrayOverflow(n, reflect.TypeOf(v)); bad != nil {
			pos := bad.GetToken().Position
			err = fmt.Errorf("line %d column %d: this list has %d values, at most %d allowed (a point is [x, y])", pos.Line, pos.Column, len(bad.Values), want)
			return
		}
		err = fmt.Errorf("the YAML decoder failed on this file (%v): check the file's structure against pipelines/demo.yaml", r)
	}()
	return yaml.NodeToValue(n, v)
}

// arrayOverflow finds the first sequence in n with more values than the Go
// array it decodes into, following t (the target type) through the tree.
func arrayOverflow(n ast.Node, t reflect.Type) (*ast.SequenceNode, int) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || n == nil {
		return nil, 0
	}
	switch t.Kind() {
	case reflect.Struct:
		mvs, ok := mappingValues(n)
		if !ok {
			return nil, 0
		}
		fields := yamlFields(t)
		for _, mv := range mvs {
			if ft, ok := fields[keyString(mv.Key)]; ok {
				if bad, want := arrayOverflow(mv.Value, ft); bad != nil {
					return bad, want
				}
			}
		}
	case reflect.Map:
		mvs, _ := mappingValues(n)
		for _, mv := range mvs {
			if bad, want := arrayOverflow(mv.Value, t.Elem()); bad != nil {
				return bad, want
			}
		}
	case reflect.Slice, reflect.Array:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			return nil, 0
		}
		if t.Kind() == reflect.Array && len(seq.Values) > t.Len() {
			return seq, t.Len()
		}
		for _, e := range seq.Values {
			if bad, want := arrayOverflow(e, t.Elem()); bad != nil {
				return bad, want
			}
		}
	}
	return nil, 0
}
