// Package modroot finds the repository root (the directory holding go.mod)
// from the working directory: `go test` runs in a package's directory and the
// CLI usually in the repository, and both need third_party/, models/,
// scripts/ and tools/ from there.
package modroot

import (
	"errors"
	"os"
	"path/filepath"
)

// ErrNotFound is returned when no directory above the start holds go.mod.
var ErrNotFound = errors.New("modroot: no go.mod in the working directory or above it")

// Find returns the nearest directory at or above dir that holds go.mod.
func Find(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNotFound
		}
		dir = parent
	}
}

// FromWorkingDir is Find from the current working directory.
func FromWorkingDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return Find(dir)
}
