// Package storetest holds the fixtures of the tests of the packages under
// engine: fresh metadata stores (a SQLite file in a temporary directory,
// or a new database on the PostgreSQL test server, see internal/testsvc)
// and run folders on a local storage root.
package storetest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/internal/testcheck"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// SQLiteURL is the URL of a new SQLite store in t's temporary directory.
func SQLiteURL(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "meta.db")
}

// Open opens the store at url (migrated), closed when t ends.
func Open(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// ForEach runs fn in a parallel subtest against a fresh SQLite store and
// a fresh PostgreSQL store. The PostgreSQL half skips when no server
// answers, unless DG_REQUIRE_SERVICES=1.
func ForEach(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, Open(t, SQLiteURL(t)))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, Open(t, testsvc.NewPostgresDatabase(t)))
	})
}

// WriteRunFolder creates files in the run folder dir (a slash-separated
// key such as "job/2025-01-01_000000") under a local storage root, each
// last modified at mod.
func WriteRunFolder(t *testing.T, root, dir string, mod time.Time, files map[string]string) {
	t.Helper()
	base := filepath.Join(root, filepath.FromSlash(dir))
	testcheck.NoErr(t, "mkdir", os.MkdirAll(base, 0o700))
	for name, content := range files {
		p := filepath.Join(base, name)
		testcheck.NoErr(t, "write", os.WriteFile(p, []byte(content), 0o600))
		testcheck.NoErr(t, "chtimes", os.Chtimes(p, mod, mod))
	}
}
