package mysql_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/internal/proc"
	"github.com/dataguardian/dataguardian/drivers/mysql"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// bigRows is the size of the largest table of the test schema.
const bigRows = 12000

func exec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// source returns a drivers.Source for database name on the test server.
func source(t testing.TB, name string) drivers.Source {
	t.Helper()
	cfg := testsvc.MySQLConfig(t)
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return drivers.Source{Type: "mysql", Host: host, Port: p, Database: name, Username: cfg.User, Password: cfg.Passwd}
}

// newSource creates a database with tables (one of bigRows rows), indexes,
// AUTO_INCREMENT, a view, a function, a procedure, a trigger, an event,
// utf8mb4 text with accents and emoji, BLOBs with NUL bytes, DECIMAL, JSON
// and DATETIME.
func newSource(t *testing.T) drivers.Source {
	name := testsvc.NewMySQLDatabase(t)
	db := testsvc.OpenMySQL(t, name)
	exec(t, db,
		"CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(100) UNIQUE, balance DECIMAL(12,2) NOT NULL DEFAULT 0, profile JSON, created DATETIME(6) NOT NULL) ENGINE=InnoDB",
		"CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(200) NOT NULL) ENGINE=InnoDB",
		"CREATE TABLE events (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, kind VARCHAR(20) NOT NULL, payload TEXT, at DATETIME NOT NULL, INDEX events_customer (customer_id, at)) ENGINE=InnoDB",
		"CREATE TABLE files (id INT PRIMARY KEY, name VARCHAR(100), data LONGBLOB) ENGINE=InnoDB",
		"CREATE TABLE empty_one (id INT PRIMARY KEY) ENGINE=InnoDB",
		"CREATE VIEW customer_totals AS SELECT c.id, c.name, COUNT(e.id) AS n FROM customers c LEFT JOIN events e ON e.customer_id = c.id GROUP BY c.id, c.name",
		"CREATE FUNCTION fn_double(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
		"CREATE PROCEDURE sp_count(OUT n INT) BEGIN SELECT COUNT(*) INTO n FROM customers; END",
		"CREATE TRIGGER customers_ai AFTER INSERT ON customers FOR EACH ROW INSERT INTO audit (what) VALUES (CONCAT('customer ', NEW.name))",
		"CREATE EVENT ev_prune ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit WHERE id < 0",
	)
	names := []string{"Ana", "João", "Zoë", "李雷", "Ωmega", "Émile 😀", "O'Brien", `Back\slash "q"`}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		_, err := tx.Exec("INSERT INTO customers (name, email, balance, profile, created) VALUES (?, ?, ?, ?, ?)",
			fmt.Sprintf("%s %d", names[i%len(names)], i), fmt.Sprintf("u%d@example.com", i),
			fmt.Sprintf("%d.%02d", i*37, i%100), fmt.Sprintf(`{"tier": %d, "tags": ["a", "ç", "😀"], "note": "),('"}`, i%3),
			time.Date(2025, 1, 1+i%28, i%24, i%60, i%60, i*1000, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		data := make([]byte, 100+i*97)
		rand.Read(data)
		data[0], data[len(data)/2] = 0, 0 // NUL bytes for sure
		if _, err := tx.Exec("INSERT INTO files VALUES (?, ?, ?)", i+1, fmt.Sprintf("file-%d.bin", i), data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	exec(t, db, fmt.Sprintf(`INSERT INTO events (customer_id, kind, payload, at)
		WITH RECURSIVE d(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < 119),
		n(i) AS (SELECT a.i * 120 + b.i + 1 FROM d a CROSS JOIN d b WHERE a.i < %d)
		SELECT 1 + i %% 200, ELT(1 + i %% 4, 'login', 'buy', 'view', 'logout'),
		       CONCAT('line ', i, '\nsecond ''line'' \\ ),( ', REPEAT('x', i %% 50)), '2025-03-01' + INTERVAL i MINUTE FROM n ORDER BY i`, bigRows/120))
	return source(t, name)
}

func mutate(t *testing.T, src drivers.Source) {
	db := testsvc.OpenMySQL(t, src.Database)
	exec(t, db,
		"INSERT INTO customers (name, email, created) VALUES ('Mallory', 'm@example.com', NOW())",
		"UPDATE events SET kind = 'changed' WHERE id % 7 = 0",
		"DELETE FROM events WHERE id % 11 = 0",
		"UPDATE files SET data = CONCAT(data, 0x00) WHERE id = 3",
		"DROP PROCEDURE sp_count",
		"DROP TRIGGER customers_ai",
	)
}

// newTarget returns a source whose database does not exist yet and is
// dropped with t.
func newTarget(t *testing.T) drivers.Source {
	name := testsvc.NewMySQLDatabase(t)
	exec(t, testsvc.OpenMySQL(t, ""), "DROP DATABASE `"+name+"`")
	return source(t, name)
}

// digest describes a database: the definitions of its tables, views,
// routines, triggers and events (its own name replaced), then per table the
// row count and a sha256 of the rows in primary key order.
func digest(t testing.TB, name string) []string {
	t.Helper()
	db := testsvc.OpenMySQL(t, name)
	norm := func(s string) string { return strings.ReplaceAll(s, "`"+name+"`", "`DB`") }
	var out []string
	query := func(q string, args ...any) [][]string {
		t.Helper()
		rows, err := db.Query(q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var res [][]string
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			row := make([]string, len(cols))
			for i, v := range vals {
				row[i] = norm(v.String)
			}
			res = append(res, row)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return res
	}
	var tables []string
	for _, r := range query("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME", name) {
		if r[1] == "VIEW" {
			out = append(out, "view "+r[0]+": "+query("SHOW CREATE VIEW `" + r[0] + "`")[0][1])
			continue
		}
		tables = append(tables, r[0])
		out = append(out, "table "+r[0]+": "+query("SHOW CREATE TABLE `" + r[0] + "`")[0][1])
	}
	for _, r := range query("SELECT ROUTINE_TYPE, ROUTINE_NAME, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY 1, 2", name) {
		out = append(out, strings.Join(r, " "))
	}
	for _, r := range query("SELECT TRIGGER_NAME, EVENT_MANIPULATION, ACTION_TIMING, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1", name) {
		out = append(out, "trigger "+strings.Join(r, " "))
	}
	for _, r := range query("SELECT EVENT_NAME, EVENT_DEFINITION, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY 1", name) {
		out = append(out, "event "+strings.Join(r, " "))
	}
	for _, table := range tables {
		out = append(out, table+": "+tableDigest(t, db, table))
	}
	return out
}

// tableDigest hashes the rows of table in primary key order, NULL told
// apart from empty.
func tableDigest(t testing.TB, db *sql.DB, table string) string {
	t.Helper()
	rows, err := db.Query("SELECT * FROM `" + table + "` ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
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
		for _, v := range vals {
			if v == nil {
				h.Write([]byte{0xff, 0xff, 0xff, 0xff})
				continue
			}
			h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(v))))
			h.Write(v)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, sha256 %s", n, hex.EncodeToString(h.Sum(nil)))
}

func equal(t testing.TB, a, b drivers.Source) {
	t.Helper()
	if da, db := digest(t, a.Database), digest(t, b.Database); !slices.Equal(da, db) {
		var diff []string
		for i := range max(len(da), len(db)) {
			var x, y string
			if i < len(da) {
				x = da[i]
			}
			if i < len(db) {
				y = db[i]
			}
			if x != y {
				diff = append(diff, fmt.Sprintf("  %s: %.300q\n  %s: %.300q", a.Database, x, b.Database, y))
			}
		}
		t.Errorf("databases differ:\n%s", strings.Join(diff, "\n"))
	}
}

func TestConformance(t *testing.T) {
	testsvc.MySQLDSN(t)
	drivertest.Run(t, drivertest.Harness{
		Driver:    mysql.New(),
		NewSource: newSource,
		Mutate:    mutate,
		NewTarget: newTarget,
		Equal:     equal,
	})
}

func TestTypes(t *testing.T) {
	if got := mysql.New().Type(); got != "mysql" {
		t.Errorf("New().Type() = %q", got)
	}
	if got := mysql.NewMariaDB().Type(); got != "mariadb" {
		t.Errorf("NewMariaDB().Type() = %q", got)
	}
	if got := (&mysql.Driver{}).Type(); got != "mysql" {
		t.Errorf("zero Driver Type() = %q", got)
	}
}

func TestDumpMetadata(t *testing.T) {
	src := newSource(t)
	data, md := drivertest.Dump(t, mysql.New(), src)
	if !strings.HasPrefix(md.DatabaseVersion, "MariaDB ") && !strings.HasPrefix(md.DatabaseVersion, "MySQL ") {
		t.Errorf("DatabaseVersion %q", md.DatabaseVersion)
	}
	want := map[string]int64{"customers": 200, "audit": 200, "events": bigRows, "files": 30, "empty_one": 0}
	if md.TablesBackedUp != len(want) || md.RowsApproximate != 200+200+bigRows+30 {
		t.Errorf("tables %d rows %d, want %d and %d", md.TablesBackedUp, md.RowsApproximate, len(want), 200+200+bigRows+30)
	}
	for k, v := range want {
		if md.TableRows[k] != v {
			t.Errorf("TableRows[%s] = %d, want %d (all: %v)", k, md.TableRows[k], v, md.TableRows)
		}
	}
	// Equal sees every kind of object the schema has.
	objects := strings.Join(digest(t, src.Database), "\n")
	for _, kind := range []string{"view customer_totals:", "FUNCTION fn_double", "PROCEDURE sp_count", "trigger customers_ai", "event ev_prune", "events: 12000 rows"} {
		if !strings.Contains(objects, kind) {
			t.Errorf("digest lacks %q:\n%s", kind, objects)
		}
	}
	for _, bad := range []string{"CREATE DATABASE", "USE `"} {
		if bytes.Contains(data, []byte(bad)) {
			t.Errorf("the dump holds %q: it would not restore into another database", bad)
		}
	}
}

// TestRestoreModes restores over a database holding an extra table: the
// default mode keeps it, Recreate removes it.
func TestRestoreModes(t *testing.T) {
	d := mysql.New()
	src := newSource(t)
	data, _ := drivertest.Dump(t, d, src)
	target := newSource(t)
	mutate(t, target)
	exec(t, testsvc.OpenMySQL(t, target.Database), "CREATE TABLE extra (x INT)", "INSERT INTO extra VALUES (1)")
	hasExtra := func() bool {
		var n int
		err := testsvc.OpenMySQL(t, "").QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'extra'", target.Database).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	if err := d.Restore(t.Context(), target, bytes.NewReader(data), nil); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !hasExtra() {
		t.Error("the default restore removed a table the backup does not hold")
	}
	if err := d.Restore(t.Context(), target, bytes.NewReader(data), &drivers.RestoreOptions{Recreate: true, Logf: t.Logf}); err != nil {
		t.Fatalf("restore with Recreate: %v", err)
	}
	if hasExtra() {
		t.Error("Recreate kept a table the backup does not hold")
	}
	equal(t, src, target)

	// Not a dump: refused before anything changes.
	err := d.Restore(t.Context(), target, strings.NewReader("DROP TABLE customers;\n"), &drivers.RestoreOptions{Recreate: true})
	if err == nil || !strings.Contains(err.Error(), "not a mariadb-dump") {
		t.Errorf("restore of a non-dump: %v", err)
	}
	equal(t, src, target)

	// A failing statement: the client's own message in the error.
	bad := append(slices.Clip(data), "INSERT INTO no_such_table VALUES (1);\n"...)
	err = d.Restore(t.Context(), target, bytes.NewReader(bad), nil)
	if !errors.Is(err, proc.ErrToolFailed) || !strings.Contains(err.Error(), "no_such_table") {
		t.Errorf("restore of a failing script: %v", err)
	}
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	var n int
	if err := testsvc.OpenMySQL(t, "").QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestVerify(t *testing.T) {
	drivertest.RunVerifier(t, drivertest.VerifierHarness{
		Driver:         mysql.NewMariaDB(),
		NewSource:      newSource,
		Equal:          equal,
		DatabaseExists: databaseExists,
		Drop: func(t *testing.T, name string) {
			exec(t, testsvc.OpenMySQL(t, ""), "DROP DATABASE IF EXISTS `"+name+"`")
		},
		MaxNameLen: 64,
		// A failing statement after the whole dump: the client's own
		// message in the error.
		BreakDump: func(dump []byte) []byte {
			return append(dump, "INSERT INTO no_such_table VALUES (1);\n"...)
		},
		CheckBroken: func(t *testing.T, err error) {
			if !errors.Is(err, proc.ErrToolFailed) || !strings.Contains(err.Error(), "no_such_table") {
				t.Errorf("verify of a failing script: %v", err)
			}
		},
	})
}

func TestPing(t *testing.T) {
	d := mysql.New()
	src := newSource(t)
	t.Run("OK", func(t *testing.T) {
		h := d.Ping(t.Context(), src)
		if h.Status != drivers.HealthOK || h.Latency <= 0 || h.Version == "" {
			t.Fatalf("ping: %+v", h)
		}
		for _, k := range []string{"uptime_seconds", "active_connections", "size_bytes"} {
			if v, ok := h.Metadata[k].(int64); !ok || v <= 0 {
				t.Errorf("metadata %s = %v", k, h.Metadata[k])
			}
		}
	})
	t.Run("AuthFailed", func(t *testing.T) {
		admin := testsvc.OpenMySQL(t, "")
		exec(t, admin,
			"DROP USER IF EXISTS 'dg_auth_test'@'%', 'dg_auth_test'@'localhost'",
			"CREATE USER 'dg_auth_test'@'%' IDENTIFIED BY 'right-Pass-1'",
			"CREATE USER 'dg_auth_test'@'localhost' IDENTIFIED BY 'right-Pass-1'",
		)
		t.Cleanup(func() {
			exec(t, testsvc.OpenMySQL(t, ""), "DROP USER IF EXISTS 'dg_auth_test'@'%', 'dg_auth_test'@'localhost'")
		})
		bad := src
		bad.Database = ""
		bad.Username, bad.Password = "dg_auth_test", "wrong-Pass-2"
		h := d.Ping(t.Context(), bad)
		if h.Status != drivers.HealthAuthFailed || !strings.Contains(h.ErrorText, "Access denied") {
			t.Fatalf("wrong password: %+v", h)
		}
		if strings.Contains(h.ErrorText, bad.Password) {
			t.Errorf("error text shows the password: %s", h.ErrorText)
		}
		bad.Password = "right-Pass-1"
		if h := d.Ping(t.Context(), bad); h.Status != drivers.HealthOK {
			t.Errorf("right password: %+v", h)
		}
	})
	drivertest.RunPingFailures(t, d, src)
	t.Run("InvalidSource", func(t *testing.T) {
		bad := src
		bad.Options = map[string]string{"tls": "maybe"}
		if h := d.Ping(t.Context(), bad); h.Status != drivers.HealthError || !strings.Contains(h.ErrorText, "maybe") {
			t.Errorf("bad tls option: %+v", h)
		}
		bad.Options = map[string]string{"parseTime": "true"}
		if h := d.Ping(t.Context(), bad); h.Status != drivers.HealthOK {
			t.Errorf("an ignored option: %+v", h)
		}
	})
	t.Run("Socket", func(t *testing.T) {
		var sock string
		if err := testsvc.OpenMySQL(t, "").QueryRow("SELECT @@socket").Scan(&sock); err != nil || sock == "" {
			testsvc.Require(t, "the MySQL/MariaDB server's unix socket", fmt.Errorf("SELECT @@socket gave %q: %v", sock, err))
		}
		if _, err := os.Stat(sock); err != nil {
			t.Skipf("server socket %s not here: %v", sock, err)
		}
		s := src
		s.Host, s.Options = "", map[string]string{mysql.OptionSocket: sock}
		if h := d.Ping(t.Context(), s); h.Status != drivers.HealthOK {
			t.Errorf("ping through %s: %+v", sock, h)
		}
		if _, err := d.Dump(t.Context(), s, io.Discard, nil); err != nil {
			t.Errorf("dump through %s: %v", sock, err)
		}
	})
}

// procWatch records, while it runs, the command lines of this process's
// children and the mode of the option files they were given.
type procWatch struct {
	mu       sync.Mutex
	cmdlines map[int]string
	modes    map[string]os.FileMode
	seen     chan struct{} // closed once a child with an option file was seen
	once     sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func watchChildren(t *testing.T) *procWatch {
	w := &procWatch{cmdlines: map[int]string{}, modes: map[string]os.FileMode{}, seen: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	me := os.Getpid()
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				pid, err := strconv.Atoi(e.Name())
				if err != nil {
					continue
				}
				stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				if err != nil {
					continue
				}
				// pid (comm) state ppid ...
				fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
				if len(fields) < 2 || fields[1] != strconv.Itoa(me) {
					continue
				}
				cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				if err != nil || len(cmd) == 0 {
					continue
				}
				line := string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))
				w.mu.Lock()
				w.cmdlines[pid] = line
				for _, arg := range strings.Split(string(cmd), "\x00") {
					if f, ok := strings.CutPrefix(arg, "--defaults-file="); ok {
						if fi, err := os.Stat(f); err == nil {
							w.modes[f] = fi.Mode()
							w.once.Do(func() { close(w.seen) })
						}
					}
				}
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *procWatch) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// gatedWriter blocks its first write until gate is closed.
type gatedWriter struct {
	w    io.Writer
	gate <-chan struct{}
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	<-g.gate
	return g.w.Write(p)
}

// gatedReader blocks once after the first at bytes until gate is closed.
type gatedReader struct {
	data []byte
	at   int
	off  int
	gate <-chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.off >= len(g.data) {
		return 0, io.EOF
	}
	if g.off >= g.at {
		<-g.gate
	} else if len(p) > g.at-g.off {
		p = p[:g.at-g.off]
	}
	n := copy(p, g.data[g.off:])
	g.off += n
	return n, nil
}

// TestSecretPassword backs up and restores as a user whose password is
// full of shell and option-file metacharacters, and checks that it never
// shows in a tool's command line or an error, and that the option file was
// 0600 and is gone.
func TestSecretPassword(t *testing.T) {
	const password = `p'a"s$s;w&o|r d# \x` + "`x`"
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	// A ~/.my.cnf with other credentials must not be read.
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".my.cnf"), []byte("[client]\nuser=nobody\npassword=wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)

	d := mysql.New()
	src := newSource(t)
	target := newTarget(t)
	user := "dg_secret_" + strings.ToLower(rand.Text()[:8])
	admin := testsvc.OpenMySQL(t, "")
	quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
	for _, host := range []string{"%", "localhost"} {
		exec(t, admin,
			fmt.Sprintf("CREATE USER '%s'@'%s' IDENTIFIED BY '%s'", user, host, quoted),
			fmt.Sprintf("GRANT ALL ON `%s`.* TO '%s'@'%s'", src.Database, user, host),
			fmt.Sprintf("GRANT ALL ON `%s`.* TO '%s'@'%s'", target.Database, user, host),
			// To see the bodies of routines it does not own (MariaDB < 11.3).
			fmt.Sprintf("GRANT SELECT ON mysql.proc TO '%s'@'%s'", user, host),
			// To restore views, routines and triggers defined by root.
			fmt.Sprintf("GRANT SUPER ON *.* TO '%s'@'%s'", user, host),
		)
	}
	t.Cleanup(func() {
		exec(t, testsvc.OpenMySQL(t, ""), fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%', '%s'@'localhost'", user, user))
	})
	src.Username, src.Password = user, password
	target.Username, target.Password = user, password

	if h := d.Ping(t.Context(), src); h.Status != drivers.HealthOK {
		t.Fatalf("ping as %s: %+v", user, h)
	}

	w := watchChildren(t)
	var buf bytes.Buffer
	md, err := d.Dump(t.Context(), src, &gatedWriter{w: &buf, gate: w.seen}, nil)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	if md.TableRows["events"] != bigRows {
		t.Errorf("dump as %s: TableRows %v", user, md.TableRows)
	}
	if !bytes.Contains(buf.Bytes(), []byte("sp_count")) || !bytes.Contains(buf.Bytes(), []byte("customers_ai")) {
		t.Error("the dump lacks the procedure or the trigger")
	}
	w2 := watchChildren(t)
	if err := d.Restore(t.Context(), target, &gatedReader{data: buf.Bytes(), at: 64<<10 + 1, gate: w2.seen}, &drivers.RestoreOptions{Recreate: true, Logf: t.Logf}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	w.close()
	w2.close()
	equal(t, src, target)

	// Errors never carry the password: a database the user may not touch.
	denied := target
	denied.Database = testsvc.NewMySQLDatabase(t)
	errs := []error{
		d.Restore(t.Context(), denied, bytes.NewReader(buf.Bytes()), &drivers.RestoreOptions{Recreate: true}),
	}
	// The client's own failure, as the same user.
	bad := append(slices.Clip(buf.Bytes()), "INSERT INTO no_such_table VALUES (1);\n"...)
	errs = append(errs, d.Restore(t.Context(), target, bytes.NewReader(bad), nil))
	_, err = d.Dump(t.Context(), drivers.Source{Host: src.Host, Port: src.Port, Username: user, Password: password + "x", Database: src.Database}, io.Discard, nil)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Error("an operation that should fail succeeded")
			continue
		}
		t.Logf("expected error: %v", err)
		if strings.Contains(err.Error(), password) {
			t.Errorf("error shows the password: %v", err)
		}
	}

	var files int
	for _, ww := range []*procWatch{w, w2} {
		for pid, line := range ww.cmdlines {
			if strings.Contains(line, password) || strings.Contains(line, "p'a") {
				t.Errorf("process %d had the password in its command line: %s", pid, line)
			}
		}
		for f, mode := range ww.modes {
			files++
			if mode.Perm() != 0o600 {
				t.Errorf("option file %s had mode %v, want 0600", f, mode)
			}
			if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("option file %s is still there", f)
			}
		}
	}
	if files < 2 {
		t.Errorf("saw %d option files, want one for the dump and one for the restore", files)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
}

// TestCancelDumpNoChild cancels a dump after its first bytes and checks
// that no tool process is left.
func TestCancelDumpNoChild(t *testing.T) {
	d := mysql.New()
	src := newSource(t)
	w := watchChildren(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := d.Dump(ctx, src, writerFunc(func(p []byte) (int, error) {
		<-w.seen
		cancel()
		return len(p), nil
	}), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled dump: %v", err)
	}
	w.close()
	for pid := range w.cmdlines {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			t.Errorf("tool process %d is still there: %s", pid, stat)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestToolMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	d := mysql.New()
	d.BinDir = t.TempDir()
	src := drivers.Source{Host: "127.0.0.1", Username: "root", Database: "x"}
	_, err := d.Dump(t.Context(), src, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "mariadb-dump, mysqldump") || !strings.Contains(err.Error(), "BinDir") {
		t.Errorf("dump without tools: %v", err)
	}
	err = d.Restore(t.Context(), src, strings.NewReader(""), nil)
	if err == nil || !strings.Contains(err.Error(), "mariadb, mysql") {
		t.Errorf("restore without tools: %v", err)
	}
}

// TestSandboxLine restores a script that starts with mariadb-dump's
// sandbox-mode line through the client of BinDir.
func TestSandboxLine(t *testing.T) {
	d := mysql.New()
	d.BinDir = "/usr/bin"
	target := newTarget(t)
	script := "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19\nCREATE TABLE t (id INT);\nINSERT INTO t VALUES (1),(2);\n"
	if err := d.Restore(t.Context(), target, strings.NewReader(script), nil); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := testsvc.OpenMySQL(t, target.Database).QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Errorf("restored %d rows, %v", n, err)
	}
}

// A restore never sends a file of this machine to the server: a dump (or
// a server answering in the place of the real one) asking for LOAD DATA
// LOCAL INFILE gets nothing, though the server allows it.
func TestRestoreSendsNoLocalFile(t *testing.T) {
	d := mysql.New()
	db := testsvc.OpenMySQL(t, "")
	var allowed int
	if err := db.QueryRow("SELECT @@local_infile").Scan(&allowed); err != nil || allowed != 1 {
		t.Skipf("the server refuses LOCAL INFILE itself (local_infile=%d, %v): nothing to prove", allowed, err)
	}
	name := testsvc.NewMySQLDatabase(t)
	src := source(t, name)
	exec(t, testsvc.OpenMySQL(t, name), "CREATE TABLE t (x INT)")
	data, _ := drivertest.Dump(t, d, src)
	secret := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(secret, []byte("the-host-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	evil := append(slices.Clip(data), fmt.Sprintf("CREATE TABLE leak (x TEXT);\nLOAD DATA LOCAL INFILE '%s' INTO TABLE leak;\n", secret)...)
	err := d.Restore(t.Context(), src, bytes.NewReader(evil), nil)
	if err == nil {
		t.Error("a restore asking for a local file succeeded")
	}
	var n int
	if err := testsvc.OpenMySQL(t, name).QueryRow("SELECT COUNT(*) FROM leak WHERE x LIKE '%host-secret%'").Scan(&n); err != nil && !strings.Contains(err.Error(), "doesn't exist") {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("the restore sent a local file to the server")
	}
}
