package stages

import (
	"errors"
	"fmt"
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
