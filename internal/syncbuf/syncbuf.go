// Package syncbuf is a text buffer that several goroutines may write while
// another reads it: where tests collect a logger's or a child process's
// output and look for a line in it.
package syncbuf

import (
	"strings"
	"sync"
)

// Buffer is a goroutine-safe strings.Builder. The zero value is empty and
// ready to use.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p; it never fails.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
