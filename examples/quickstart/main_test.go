package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The quickstart runs twice on the same directories (the second run reuses
// what the first registered) and leaves verified backups with manifests.
func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	data, storage, demo := filepath.Join(dir, "data"), filepath.Join(dir, "data", "backups"), filepath.Join(dir, "demo")
	for range 2 {
		if err := run(t.Context(), data, storage, demo); err != nil {
			t.Fatal(err)
		}
	}
	manifests, err := filepath.Glob(filepath.Join(storage, "*", "*", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(manifests) != 4 {
		t.Fatalf("%d manifests after two runs of two jobs, want 4: %v", len(manifests), manifests)
	}
	if _, err := os.Stat(filepath.Join(demo, "demo-restored.db")); err != nil {
		t.Fatalf("no restored copy: %v", err)
	}
}
