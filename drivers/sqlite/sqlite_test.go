package sqlite_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/sqlite"
)

// openDB opens the database at path for a test, in WAL mode, creating it.
func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(20000)&_pragma=journal_mode(wal)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// newSource creates a WAL database with tables, an index, a view, a trigger,
// BLOBs and UTF-8 text.
func newSource(t *testing.T) drivers.Source {
	path := filepath.Join(t.TempDir(), "app.db")
	db := openDB(t, path)
	exec(t, db,
		`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE)`,
		`CREATE TABLE docs (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), title TEXT, body BLOB, score REAL)`,
		`CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT)`,
		`CREATE INDEX docs_user ON docs(user_id, score)`,
		`CREATE VIEW user_docs AS SELECT u.name, d.title FROM users u JOIN docs d ON d.user_id = u.id`,
		`CREATE TRIGGER users_audit AFTER INSERT ON users BEGIN INSERT INTO audit (what) VALUES ('user ' || NEW.name); END`,
	)
	names := []string{"Ana", "João", "Zoë", "李雷", "Ωmega", "Émile 😀"}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 60 {
		if _, err := tx.Exec(`INSERT INTO users (name, email) VALUES (?, ?)`, fmt.Sprintf("%s %d", names[i%len(names)], i), fmt.Sprintf("u%d@example.com", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 120 {
		body := make([]byte, rng.IntN(3000))
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		if _, err := tx.Exec(`INSERT INTO docs (user_id, title, body, score) VALUES (?, ?, ?, ?)`, 1+i%60, fmt.Sprintf("título %d ✓", i), body, rng.Float64()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return drivers.Source{Type: "sqlite", Path: path}
}

func mutate(t *testing.T, src drivers.Source) {
	db := openDB(t, src.Path)
	exec(t, db,
		`INSERT INTO users (name, email) VALUES ('Mallory', 'm@example.com')`,
		`UPDATE docs SET title = 'changed' WHERE id % 7 = 0`,
		`DELETE FROM docs WHERE id % 11 = 0`,
		`CREATE TABLE extra (x)`,
		`INSERT INTO extra VALUES (1)`,
	)
	db.Close()
}

func newTarget(t *testing.T) drivers.Source {
	return drivers.Source{Type: "sqlite", Path: filepath.Join(t.TempDir(), "restored.db")}
}

// digest describes a database: its schema, then per table the row count
// and a sha256 of the rows in rowid order.
func digest(t testing.TB, path string) []string {
	t.Helper()
	db := openDB(t, path)
	defer db.Close()
	var out, tables []string
	rows, err := db.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var typ, name, def string
		if err := rows.Scan(&typ, &name, &def); err != nil {
			t.Fatal(err)
		}
		out = append(out, typ+" "+name+": "+def)
		if typ == "table" {
			tables = append(tables, name)
		}
	}
	rows.Close()
	for _, table := range tables {
		out = append(out, table+": "+tableDigest(t, db, table))
	}
	return out
}

func tableDigest(t testing.TB, db *sql.DB, table string) string {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM "` + table + `" ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	h := sha256.New()
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%#v\n", vals)
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, sha256 %s", n, hex.EncodeToString(h.Sum(nil)))
}

func equal(t testing.TB, a, b drivers.Source) {
	t.Helper()
	if da, db := digest(t, a.Path), digest(t, b.Path); !slices.Equal(da, db) {
		t.Errorf("databases differ:\n%s:\n%q\n%s:\n%q", a.Path, da, b.Path, db)
	}
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Driver:    sqlite.New(),
		NewSource: newSource,
		Mutate:    mutate,
		NewTarget: newTarget,
		Equal:     equal,
	})
}

// TestDumpWhileWriting dumps while four writers keep moving money between
// accounts, each transfer one transaction: the restored snapshot must be
// intact and every balance must match the transfer log.
func TestDumpWhileWriting(t *testing.T) {
	const accounts, initial = 50, 1000
	path := filepath.Join(t.TempDir(), "bank.db")
	db := openDB(t, path)
	exec(t, db,
		`CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)`,
		`CREATE TABLE transfers (id INTEGER PRIMARY KEY, src INTEGER, dst INTEGER, amount INTEGER, pad BLOB)`,
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < %d) INSERT INTO accounts SELECT i, %d FROM n`, accounts, initial),
		// Some bulk so that the dump spans many pages.
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 300) INSERT INTO transfers (src, dst, amount, pad) SELECT 1, 1, 0, randomblob(2000) FROM n`,
	)
	db.SetMaxOpenConns(4)

	ctx, stop := context.WithCancel(t.Context())
	var commits atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				if err := transfer(ctx, db, 1+rng.IntN(accounts), 1+rng.IntN(accounts), 1+rng.IntN(50)); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
				commits.Add(1)
			}
		})
	}
	for commits.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	var buf bytes.Buffer
	before := commits.Load()
	md, err := sqlite.New().Dump(t.Context(), drivers.Source{Type: "sqlite", Path: path}, slowWriter{&buf}, nil)
	during := commits.Load() - before
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	t.Logf("dump of %d bytes; %d transfers committed during the dump", buf.Len(), during)
	if during == 0 {
		t.Error("no transfer committed during the dump: the dump blocked the writers")
	}
	if got := buf.Bytes()[18:20]; !bytes.Equal(got, []byte{1, 1}) {
		t.Errorf("dump header bytes 18-19 = %v, want [1 1] (rollback journal)", got)
	}

	target := newTarget(t)
	if err := sqlite.New().Restore(t.Context(), target, &buf, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}
	rdb := openDB(t, target.Path)
	var check string
	if err := rdb.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	var sum, nTransfers, bad int64
	if err := rdb.QueryRow(`SELECT sum(balance) FROM accounts`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != accounts*initial {
		t.Errorf("sum of balances = %d, want %d: the snapshot is not consistent", sum, accounts*initial)
	}
	err = rdb.QueryRow(fmt.Sprintf(`SELECT count(*) FROM accounts a WHERE balance != %d
		+ (SELECT coalesce(sum(amount), 0) FROM transfers WHERE dst = a.id)
		- (SELECT coalesce(sum(amount), 0) FROM transfers WHERE src = a.id)`, initial)).Scan(&bad)
	if err != nil || bad != 0 {
		t.Errorf("%d accounts disagree with the transfer log (%v)", bad, err)
	}
	if err := rdb.QueryRow(`SELECT count(*) FROM transfers`).Scan(&nTransfers); err != nil {
		t.Fatal(err)
	}
	if want := nTransfers + accounts; md.RowsApproximate != want || md.TablesBackedUp != 2 {
		t.Errorf("metadata says %d tables, %d rows; the snapshot has 2 tables, %d rows", md.TablesBackedUp, md.RowsApproximate, want)
	}
}

// transfer moves amount from account a to account b in one transaction.
func transfer(ctx context.Context, db *sql.DB, a, b, amount int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	for _, s := range []struct {
		q    string
		args []any
	}{
		{`UPDATE accounts SET balance = balance - ? WHERE id = ?`, []any{amount, a}},
		{`UPDATE accounts SET balance = balance + ? WHERE id = ?`, []any{amount, b}},
		{`INSERT INTO transfers (src, dst, amount, pad) VALUES (?, ?, ?, randomblob(500))`, []any{a, b, amount}},
	} {
		if _, err := tx.ExecContext(ctx, s.q, s.args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// slowWriter gives concurrent writers time to commit during a dump.
type slowWriter struct{ w io.Writer }

func (s slowWriter) Write(p []byte) (int, error) {
	time.Sleep(200 * time.Microsecond)
	return s.w.Write(p)
}

func TestMissingSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	src := drivers.Source{Type: "sqlite", Path: path}
	_, err := sqlite.New().Dump(t.Context(), src, io.Discard, nil)
	if !errors.Is(err, drivers.ErrInvalidSource) {
		t.Errorf("Dump of a missing file: got %v, want ErrInvalidSource", err)
	}
	h := sqlite.New().Ping(t.Context(), src)
	if h.Status != drivers.HealthUnreachable || h.ErrorText == "" {
		t.Errorf("Ping of a missing file: %+v, want status %q with a message", h, drivers.HealthUnreachable)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 0 {
		t.Errorf("Dump or Ping of a missing file created %v", entries)
	}
}

// TestRestoreRefusesDamagedStream feeds streams that are not a healthy
// database: the target must stay as it was, with nothing left beside it.
func TestRestoreRefusesDamagedStream(t *testing.T) {
	src := newSource(t)
	var good bytes.Buffer
	if _, err := sqlite.New().Dump(t.Context(), src, &good, nil); err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(good.Bytes())
	for i := 4096; i < len(damaged); i += 3 { // garble every page but the first
		damaged[i] ^= 0x5a
	}
	for name, stream := range map[string][]byte{
		"not a database": []byte("hello, this is not SQLite at all, just some text of enough length to fill a header ......................."),
		"garbled pages":  damaged,
		"empty":          nil,
	} {
		t.Run(name, func(t *testing.T) {
			target := newSource(t)
			before, _ := os.ReadFile(target.Path)
			err := sqlite.New().Restore(t.Context(), target, bytes.NewReader(stream), nil)
			if err == nil {
				t.Fatal("restore of a damaged stream succeeded")
			}
			t.Log(err)
			after, _ := os.ReadFile(target.Path)
			if !bytes.Equal(before, after) {
				t.Error("the target changed")
			}
			entries, _ := os.ReadDir(filepath.Dir(target.Path))
			for _, e := range entries {
				if e.Name() != filepath.Base(target.Path) {
					t.Errorf("restore left %s", e.Name())
				}
			}
		})
	}
}

// TestRestoreKeepsJournalMode checks that a restore over a WAL database
// gives a WAL database and a restore into a new file a rollback one.
func TestRestoreKeepsJournalMode(t *testing.T) {
	src := newSource(t)
	var dump bytes.Buffer
	if _, err := sqlite.New().Dump(t.Context(), src, &dump, nil); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		target drivers.Source
		want   byte
	}{
		"new file":     {newTarget(t), 1},
		"over WAL one": {newSource(t), 2},
	} {
		if err := sqlite.New().Restore(t.Context(), tc.target, bytes.NewReader(dump.Bytes()), nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		hdr := make([]byte, 20)
		f, err := os.Open(tc.target.Path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadFull(f, hdr)
		f.Close()
		if err != nil || hdr[18] != tc.want || hdr[19] != tc.want {
			t.Errorf("%s: header bytes 18-19 = %v (%v), want %d", name, hdr[18:20], err, tc.want)
		}
		equal(t, src, tc.target)
	}
}
