package main

import (
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/uptrace/bun/driver/pgdriver"
)

// roundTrip backs up the source DSN with the CLI (split into parts, zstd),
// verifies it, checks it with --verify-only and restores it into target.
// env carries the password.
func roundTrip(t *testing.T, typ, source, target string, env []string) {
	t.Helper()
	storageDir := t.TempDir()
	var b backupOutput
	res := dg(t, env, "backup", "--type", typ, "--dsn", source, "--storage", storageDir, "--compression", "zstd", "--max-file-size-mb", "1", "--json")
	if res.code != 0 {
		t.Fatalf("backup: %v", res)
	}
	decode(t, res, &b)
	if b.Manifest == nil || b.Manifest.DatasourceType != typ || b.Manifest.Parts < 2 || b.Manifest.Metadata.TablesBackedUp < 2 {
		t.Fatalf("backup --json = %+v", b)
	}
	ok(t, "verify", b.Dir)

	var v restoreOutput
	res = dg(t, env, "restore", b.Dir, "--dsn", source, "--verify-only", "--json")
	decode(t, res, &v)
	if res.code != 0 || !v.OK || v.Verification == nil || !v.Verification.OK || v.Verification.Kept ||
		!strings.HasPrefix(v.Verification.Database, verifyDatabasePrefix) || len(v.Verification.Tables) < 2 {
		t.Fatalf("restore --verify-only: %+v\n%v", v.Verification, res)
	}
	if res := dg(t, env, "restore", b.Dir, "--dsn", target); res.code != 0 {
		t.Fatalf("restore: %v", res)
	}
}

// tableDigests returns, per table, "rows:digest" computed by query (which
// has one %s for the table name).
func tableDigests(t *testing.T, db *sql.DB, query string, tables ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range tables {
		var n int64
		var digest sql.NullString
		if err := db.QueryRow(fmt.Sprintf(query, table)).Scan(&n, &digest); err != nil {
			t.Fatalf("digest %s: %v", table, err)
		}
		out[table] = fmt.Sprintf("%d:%s", n, digest.String)
	}
	return out
}

func equalDigests(t *testing.T, got, want map[string]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restored data differs:\n got %v\nwant %v", got, want)
	}
}

func TestPostgresRoundTrip(t *testing.T) {
	source, target := testsvc.NewPostgresDatabase(t), testsvc.NewPostgresDatabase(t)
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(source)))
	defer db.Close()
	for _, q := range []string{
		`CREATE SEQUENCE invoice_no START 1000`,
		`CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, photo bytea)`,
		`CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers(id), note text, total numeric(12,2))`,
		`CREATE INDEX orders_customer ON orders(customer_id)`,
		`CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100`,
		`INSERT INTO customers(name, photo) SELECT 'cliente ' || g || ' ç ✓', decode(md5(g::text) || md5((g*7)::text), 'hex') FROM generate_series(1, 3000) g`,
		`INSERT INTO orders(customer_id, note, total) SELECT 1 + g % 3000, md5(random()::text) || md5(random()::text), g % 500 FROM generate_series(1, 60000) g`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip(t, "postgres", source, target, nil)
	query := `SELECT count(*), md5(string_agg(t::text, ',' ORDER BY id)) FROM %s t`
	restored := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(target)))
	defer restored.Close()
	equalDigests(t, tableDigests(t, restored, query, "customers", "orders", "big_orders"), tableDigests(t, db, query, "customers", "orders", "big_orders"))
}

func TestMySQLRoundTrip(t *testing.T) {
	source, target := testsvc.NewMySQLDatabase(t), testsvc.NewMySQLDatabase(t)
	cfg := testsvc.MySQLConfig(t)
	var env []string
	if cfg.Passwd != "" {
		env = []string{envPassword + "=" + cfg.Passwd}
	}
	dsn := func(db string) string { return "mysql://" + url.PathEscape(cfg.User) + "@" + cfg.Addr + "/" + db }
	db := testsvc.OpenMySQL(t, source)
	for _, q := range []string{
		`CREATE TABLE customers (id int AUTO_INCREMENT PRIMARY KEY, name varchar(200) NOT NULL, photo varbinary(64))`,
		`CREATE TABLE orders (id bigint AUTO_INCREMENT PRIMARY KEY, customer_id int, note text, total decimal(12,2), KEY orders_customer (customer_id))`,
		`CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100`,
		`INSERT INTO customers(name, photo) SELECT CONCAT('cliente ', seq, ' ç ✓'), UNHEX(MD5(seq)) FROM seq_1_to_3000`,
		`INSERT INTO orders(customer_id, note, total) SELECT 1 + seq % 3000, CONCAT(MD5(RAND()), MD5(RAND())), seq % 500 FROM seq_1_to_60000`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip(t, "mariadb", dsn(source), dsn(target), env)
	query := "SELECT COUNT(*), MD5(GROUP_CONCAT(CONCAT_WS('|', id, HEX(t.customer_id), t.note, t.total) ORDER BY id SEPARATOR ',')) FROM %s t"
	cquery := "SELECT COUNT(*), MD5(GROUP_CONCAT(CONCAT_WS('|', id, name, HEX(photo)) ORDER BY id SEPARATOR ',')) FROM %s t"
	restored := testsvc.OpenMySQL(t, target)
	for _, d := range []*sql.DB{db, restored} {
		d.SetMaxOpenConns(1)
		if _, err := d.Exec("SET SESSION group_concat_max_len = 1073741824"); err != nil {
			t.Fatal(err)
		}
	}
	equalDigests(t, tableDigests(t, restored, query, "orders", "big_orders"), tableDigests(t, db, query, "orders", "big_orders"))
	equalDigests(t, tableDigests(t, restored, cquery, "customers"), tableDigests(t, db, cquery, "customers"))
}
