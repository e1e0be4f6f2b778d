package stages

import (
	"errors"
	"fmt"
	"math"
)

// FieldError is a problem with one field of a component's configuration.
// Path is relative to the component's own section ("url", "spool.dir",
// "zones[1].polygon[0]"); the config loader prefixes the section and finds
// the field's line and column in the file.
type FieldError struct {
	Path string
	Err  error
}

// Error formats as "path: message".
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// Errorf returns a FieldError at path with a formatted message. Messages
// say what is wrong and what to do, lowercase, without the path.
func Errorf(path, format string, a ...any) error {
	return &FieldError{Path: path, Err: fmt.Errorf(format, a...)}
}

// Under places the problems in err below prefix: each FieldError's path is
// prefixed, and any other error becomes a FieldError at prefix. It lets a
// component check a nested part with that part's own Validate.
func Under(prefix string, err error) error {
	var out []error
	for _, e := range Leaves(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, &FieldError{Path: JoinPath(prefix, fe.Path), Err: fe.Err})
			continue
		}
		out = append(out, &FieldError{Path: prefix, Err: e})
	}
	return errors.Join(out...)
}

// Leaves splits errors.Join trees into their leaves.
func Leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// JoinPath joins YAML field paths: "sinks" + "nats.url", "streams[0]" + "url",
// "zones" + "[1].polygon".
func JoinPath(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case path[0] == '[':
		return prefix + path
	}
	return prefix + "." + path
}

// CheckMasks returns a FieldError per problem in masks, polygons of [x, y]
// points given as fractions of the frame (the `masks` key of motion and
// privacy), at paths under field ("masks[0][2]").
func CheckMasks(field string, masks [][][]float64) []error {
	var errs []error
	for i, pg := range masks {
		if len(pg) < 3 {
			errs = append(errs, Errorf(fmt.Sprintf("%s[%d]", field, i), "a polygon needs at least 3 points, got %d", len(pg)))
		}
		for j, pt := range pg {
			at := fmt.Sprintf("%s[%d][%d]", field, i, j)
			if len(pt) != 2 {
				errs = append(errs, Errorf(at, "a point is [x, y], got %d numbers", len(pt)))
				continue
			}
			for k, name := range []string{"x", "y"} {
				if v := pt[k]; math.IsNaN(v) || v < 0 || v > 1 {
					errs = append(errs, Errorf(at, "%s=%g outside [0,1]: give mask points as fractions of the frame width and height, (0,0) top-left to (1,1) bottom-right", name, v))
				}
			}
		}
	}
	return errs
}
