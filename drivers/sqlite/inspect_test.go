package sqlite_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/sqlite"
)

// closedDB creates the database at path with stmts in journal mode mode
// and closes it.
func closedDB(t *testing.T, path, mode string, stmts ...string) drivers.Source {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode("+mode+")")
	if err != nil {
		t.Fatal(err)
	}
	exec(t, db, append([]string{"PRAGMA user_version = 1"}, stmts...)...) // creates the file
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return drivers.Source{Type: "sqlite", Path: path}
}

func TestInspector(t *testing.T) {
	d := sqlite.New()
	for _, mode := range []string{"wal", "delete"} {
		t.Run(mode, func(t *testing.T) {
			full := closedDB(t, filepath.Join(t.TempDir(), "full.db"), mode, `CREATE TABLE t (x)`, `INSERT INTO t VALUES (1)`)
			noTables := closedDB(t, filepath.Join(t.TempDir(), "none.db"), mode)
			onlyView := closedDB(t, filepath.Join(t.TempDir(), "view.db"), mode, `CREATE VIEW v AS SELECT 1 AS x`)
			zero := filepath.Join(t.TempDir(), "zero.db")
			if err := os.WriteFile(zero, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			t.Run("Missing", func(t *testing.T) { drivertest.RunInspector(t, d, newTarget(t), full) })
			t.Run("ZeroLength", func(t *testing.T) { drivertest.RunInspector(t, d, drivers.Source{Path: zero}, full) })
			t.Run("NoTables", func(t *testing.T) { drivertest.RunInspector(t, d, noTables, onlyView) })
		})
	}
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, []byte("not a database, not at all; long enough to have a header of its own....................................."), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Empty(t.Context(), drivers.Source{Path: garbage}); !errors.Is(err, drivers.ErrInvalidSource) {
		t.Errorf("Empty of a file that is not a database: %v; want ErrInvalidSource", err)
	}
	if _, err := d.Empty(t.Context(), drivers.Source{Path: t.TempDir()}); !errors.Is(err, drivers.ErrInvalidSource) {
		t.Errorf("Empty of a directory: %v; want ErrInvalidSource", err)
	}
}

func TestCheck(t *testing.T) {
	var fe *drivers.FieldError
	if err := sqlite.New().Check(drivers.Source{Type: "sqlite"}); !errors.As(err, &fe) || fe.Field != "path" || !errors.Is(err, drivers.ErrInvalidSource) {
		t.Fatalf("Check without a path: %v; want a FieldError naming path", err)
	}
	if err := sqlite.New().Check(drivers.Source{Type: "sqlite", Path: "/srv/app.db"}); err != nil {
		t.Fatal(err)
	}
}
