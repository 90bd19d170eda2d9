package postgres_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/postgres"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// passwordRole must be authenticated with scram-sha-256 from 127.0.0.1;
// .ci/run adds that rule to pg_hba.conf ahead of the machine's trust rules.
const passwordRole = "dg_pw_test"

// A real password check: the right password (full of shell
// metacharacters) reaches pg_dump and pg_restore through their environment
// and works; a wrong one is auth_failed for Ping and a clear error for Dump.
func TestPasswordAuthentication(t *testing.T) {
	const right = `p'a"s$s;w&o|r d #\x`
	db := newEmpty(t)
	a := admin(t)
	execAll(t, a, `DO $$ BEGIN CREATE ROLE `+passwordRole+` LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
		`ALTER ROLE `+passwordRole+` PASSWORD '`+strings.ReplaceAll(right, "'", "''")+`'`,
		`GRANT ALL ON DATABASE "`+db.Database+`" TO `+passwordRole)
	execAll(t, openDB(t, db), `GRANT ALL ON SCHEMA public TO `+passwordRole)
	d := postgres.New()
	src := db
	src.Username = passwordRole

	src.Password = right + "nope"
	h := d.Ping(t.Context(), src)
	if h.Status == drivers.HealthOK {
		testsvc.Require(t, "password authentication for role "+passwordRole+" on 127.0.0.1 (.ci/run adds a scram-sha-256 rule to pg_hba.conf)",
			errors.New("the server accepted a wrong password: pg_hba.conf trusts this role"))
	}
	if h.Status != drivers.HealthAuthFailed || !strings.Contains(h.ErrorText, "password authentication failed") || strings.Contains(h.ErrorText, right) {
		t.Fatalf("wrong password: health %+v; want auth_failed naming the cause, without the password", h)
	}
	if _, err := d.Dump(t.Context(), src, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "password authentication failed") || strings.Contains(err.Error(), right) {
		t.Fatalf("dump with a wrong password: %v", err)
	}

	src.Password = right
	if h := d.Ping(t.Context(), src); h.Status != drivers.HealthOK {
		t.Fatalf("right password: health %+v", h)
	}
	execAll(t, openDB(t, db), `CREATE TABLE t (id int PRIMARY KEY, v text)`, `INSERT INTO t SELECT g, 'ção ' || g FROM generate_series(1, 500) g`,
		`ALTER TABLE t OWNER TO `+passwordRole)
	var dump bytes.Buffer
	md, err := d.Dump(t.Context(), src, &dump, nil)
	if err != nil {
		t.Fatalf("dump with the right password: %v", err)
	}
	if md.TableRows["public.t"] != 500 {
		t.Fatalf("metadata %+v", md)
	}
	target := newEmpty(t)
	execAll(t, a, `GRANT ALL ON DATABASE "`+target.Database+`" TO `+passwordRole)
	execAll(t, openDB(t, target), `GRANT ALL ON SCHEMA public TO `+passwordRole)
	target.Username, target.Password = passwordRole, right
	if err := d.Restore(t.Context(), target, &dump, nil); err != nil {
		t.Fatalf("restore with the right password: %v", err)
	}
	var n int
	if err := openDB(t, parse(t, dsnWithDB(t, target.Database))).QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 500 {
		t.Fatalf("restored %d rows, %v", n, err)
	}
}

// dsnWithDB is the admin DSN pointed at database name.
func dsnWithDB(t *testing.T, name string) string {
	src := parse(t, testsvc.PostgresDSN(t))
	src.Database = name
	return dsnOf(src)
}
