// Package storetest opens fresh metadata stores for the tests of the
// packages under engine: a SQLite file in a temporary directory, or a new
// database on the PostgreSQL test server (see internal/testsvc).
package storetest

import (
	"path/filepath"
	"testing"

	"github.com/dataguardian/dataguardian/engine/store"
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
