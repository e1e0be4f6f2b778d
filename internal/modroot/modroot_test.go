package modroot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	root, err := FromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "scripts", "setup.sh")); err != nil {
		t.Fatalf("root %s has no scripts/setup.sh: %v", root, err)
	}
	if _, err := Find(t.TempDir()); err != ErrNotFound {
		t.Fatalf("Find(temp dir) = %v, want ErrNotFound", err)
	}
}
