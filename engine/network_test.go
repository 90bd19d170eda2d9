package engine

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/go-sql-driver/mysql"
	_ "github.com/uptrace/bun/driver/pgdriver"
)

// networkCase is a network database the engine backs up and restores
// through its real dump and restore tools.
type networkCase struct {
	typ    string
	newDB  func(t *testing.T) (src drivers.Source, db *sql.DB) // a fresh database and a handle on it
	schema []string
}

func TestNetworkDatabasesThroughTheEngine(t *testing.T) {
	cases := []networkCase{
		{
			typ: "postgres",
			newDB: func(t *testing.T) (drivers.Source, *sql.DB) {
				dsn := testsvc.NewPostgresDatabase(t)
				src, err := drivers.ParseDSN("postgres", dsn)
				mustNoErr(t, "parse dsn", err)
				db, err := sql.Open("pg", dsn)
				mustNoErr(t, "open", err)
				t.Cleanup(func() { db.Close() })
				return src, db
			},
			schema: []string{
				`CREATE TABLE orders (id serial PRIMARY KEY, city text, total numeric(10,2), payload bytea)`,
				`INSERT INTO orders (city, total, payload) SELECT 'São Paulo ' || g, g / 7.0, decode(md5(g::text), 'hex') FROM generate_series(1, 5000) g`,
			},
		},
		{
			typ: "mysql",
			newDB: func(t *testing.T) (drivers.Source, *sql.DB) {
				name := testsvc.NewMySQLDatabase(t)
				cfg := testsvc.MySQLConfig(t)
				host, port, _ := strings.Cut(cfg.Addr, ":")
				src := drivers.Source{Type: "mysql", Host: host, Database: name, Username: cfg.User, Password: cfg.Passwd}
				src.Port = atoi(port)
				return src, testsvc.OpenMySQL(t, name)
			},
			schema: []string{
				`CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, city VARCHAR(64), total DECIMAL(10,2), payload BLOB) CHARACTER SET utf8mb4`,
				`INSERT INTO orders (city, total, payload) SELECT CONCAT('São Paulo ', seq), seq / 7, UNHEX(MD5(seq)) FROM seq_1_to_5000`,
			},
		},
	}
	for _, c := range cases {
		t.Run(c.typ, func(t *testing.T) {
			ctx := t.Context()
			e, err := newEngine(ctx, Config{DataDir: t.TempDir(), Logger: discardLogger})
			mustNoErr(t, "new", err)
			defer e.Close()
			src, db := c.newDB(t)
			for _, q := range c.schema {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			ds := &Datasource{Name: c.typ, Type: c.typ, Host: src.Host, Port: src.Port, Database: src.Database, Username: src.Username, Options: src.Options}
			mustNoErr(t, "datasource", e.CreateDatasource(ctx, ds, src.Password))
			loc := &StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": t.TempDir()}}
			mustNoErr(t, "storage", e.CreateStorageLocation(ctx, loc))
			job := &BackupJob{Name: c.typ, DatasourceID: ds.ID, StorageLocationIDs: []string{loc.ID}, Compression: "zstd"}
			mustNoErr(t, "job", e.CreateBackupJob(ctx, job))
			backup, err := e.RunBackup(ctx, job.ID)
			if err != nil {
				t.Fatalf("backup: %v\n%s", err, logText(t, e, backup.ID))
			}
			md := backup.Metadata["manifest"]
			if !strings.Contains(fmtAny(md), "5000") {
				t.Fatalf("backup metadata %v lacks the row count", md)
			}

			target, tdb := c.newDB(t)
			if _, err := e.Restore(ctx, backup.ID, target, nil); err != nil {
				t.Fatalf("restore: %v", err)
			}
			const q = `SELECT count(*), sum(total), min(city) FROM orders`
			var n1, n2 int
			var s1, s2, c1, c2 string
			mustNoErr(t, "source query", db.QueryRowContext(ctx, q).Scan(&n1, &s1, &c1))
			mustNoErr(t, "target query", tdb.QueryRowContext(ctx, q).Scan(&n2, &s2, &c2))
			if n1 != 5000 || n1 != n2 || s1 != s2 || c1 != c2 {
				t.Fatalf("restored %d/%s/%q, source %d/%s/%q", n2, s2, c2, n1, s1, c1)
			}
		})
	}
}

var _ = mysql.Config{}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func fmtAny(v any) string { return fmt.Sprint(v) }
