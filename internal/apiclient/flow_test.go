package apiclient_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/dataguardian/dataguardian/internal/apiclient"
	"github.com/dataguardian/dataguardian/internal/apiclient/specgen"
	"github.com/dataguardian/dataguardian/internal/servertest"
)

// Limits of the flow test.
const (
	flowTimeout  = 50 * time.Second       // the whole conversation with the server
	pollInterval = 100 * time.Millisecond // between reads of a running execution
	sampleRows   = 500                    // rows of the database backed up
)

// TestBackupRestoreFlow drives a real `dataguardian serve` process through
// the generated client only: a SQLite datasource, a zstd backup job, a run,
// the Backups tab, and a restore over the changed database, which must
// bring back exactly the rows backed up.
func TestBackupRestoreFlow(t *testing.T) {
	srv := servertest.Start(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), flowTimeout)
	defer cancel()
	c := newClient(t, srv.URL, srv.Token)

	served := fetchServedDocument(ctx, t, srv.URL)
	committed, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	// The server names itself first among the servers; the committed
	// document, made without a listener, does not.
	var doc struct{ Servers []struct{ URL string } }
	if err := json.Unmarshal(served, &doc); err != nil || len(doc.Servers) != 2 || doc.Servers[0].URL != srv.URL {
		t.Errorf("servers of the served document: %+v (%v), want %s first", doc.Servers, err, srv.URL)
	}
	if d := firstDiff(withoutServers(t, served), withoutServers(t, committed)); d != "" {
		t.Errorf("the server's %s differs from internal/apiclient/openapi.json: %s; %s", specgen.Path, d, regenerate)
	}

	// Without a token the API refuses, with the generated problem type.
	anon := newClient(t, srv.URL, "")
	if r, err := anon.ListStorageLocationsWithResponse(ctx, nil); err != nil {
		t.Fatal(err)
	} else if r.StatusCode() != http.StatusUnauthorized || r.ApplicationproblemJSON401 == nil {
		t.Fatalf("list storage locations without a token: status %d, problem %v; want 401 problem JSON: %s",
			r.StatusCode(), r.ApplicationproblemJSON401, r.Body)
	}

	dbPath := filepath.Join(t.TempDir(), "app.db")
	seed(t, dbPath)
	wantRows, wantSum := fingerprint(t, dbPath)

	ds, err := c.CreateDatasourceWithResponse(ctx, apiclient.DatasourceCreate{
		Name: "app (sqlite)", Type: "sqlite", Path: &dbPath})
	check(t, "create datasource", http.StatusCreated, ds, err)
	dsID := ds.JSON201.Id

	locID := storageLocation(ctx, t, c)

	job, err := c.CreateBackupJobWithResponse(ctx, apiclient.BackupJobCreate{
		Name: "app daily", DatasourceId: dsID, StorageLocationIds: &[]string{locID},
		Compression: new(apiclient.BackupJobCreateCompressionZstd)})
	check(t, "create backup job", http.StatusCreated, job, err)

	run, err := c.RunBackupJobWithResponse(ctx, job.JSON201.Id)
	check(t, "run backup job", http.StatusAccepted, run, err)
	backup := waitCompleted(ctx, t, c, run.JSON202.Id)
	if backup.Operation != apiclient.ExecutionOperationBackup || deref(backup.Compression) != "zstd" || backup.SizeBytes <= 0 {
		t.Fatalf("backup execution: operation %q, compression %q, size %d; want a zstd backup of a non-empty database",
			backup.Operation, deref(backup.Compression), backup.SizeBytes)
	}

	list, err := c.ListDatasourceBackupsWithResponse(ctx, dsID, nil)
	check(t, "list datasource backups", http.StatusOK, list, err)
	i := slices.IndexFunc(*list.JSON200, func(b apiclient.Backup) bool { return b.Id == backup.Id })
	if i < 0 || !(*list.JSON200)[i].Restorable {
		t.Fatalf("the Backups tab of the datasource lists %d backups, want a restorable one with id %s: %s",
			len(*list.JSON200), backup.Id, list.Body)
	}

	// Change the database, so that only a restore brings the rows back.
	mutate(t, dbPath)
	if rows, sum := fingerprint(t, dbPath); rows == wantRows && sum == wantSum {
		t.Fatal("mutate left the database unchanged; the restore would prove nothing")
	}

	bad, err := c.RestoreBackupWithResponse(ctx, backup.Id, apiclient.RestoreRequest{ConfirmationPhrase: new("restaurar")})
	if err != nil {
		t.Fatal(err)
	}
	if bad.StatusCode() != http.StatusUnprocessableEntity || !namesLocation(bad.ApplicationproblemJSON422, "body.confirmation_phrase") {
		t.Fatalf("restore with a wrong phrase: status %d; want 422 problem naming body.confirmation_phrase: %s", bad.StatusCode(), bad.Body)
	}

	restore, err := c.RestoreBackupWithResponse(ctx, backup.Id, apiclient.RestoreRequest{ConfirmationPhrase: new("RESTAURAR")})
	check(t, "restore backup", http.StatusAccepted, restore, err)
	restored := waitCompleted(ctx, t, c, restore.JSON202.Id)
	if restored.Operation != apiclient.ExecutionOperationRestore || deref(restored.SourceExecutionId) != backup.Id {
		t.Fatalf("restore execution: operation %q, source %q; want a restore of %s",
			restored.Operation, deref(restored.SourceExecutionId), backup.Id)
	}
	if rows, sum := fingerprint(t, dbPath); rows != wantRows || sum != wantSum {
		t.Fatalf("after the restore the database has %d rows with checksum %s, want %d rows with checksum %s",
			rows, sum, wantRows, wantSum)
	}
}

// newClient returns a generated client of the server at url that sends
// token as a bearer token ("" sends none).
func newClient(t *testing.T, url, token string) *apiclient.ClientWithResponses {
	t.Helper()
	c, err := apiclient.NewClientWithResponses(url, apiclient.WithRequestEditorFn(
		func(_ context.Context, r *http.Request) error {
			if token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			return nil
		}))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

// response is what every generated *Response has.
type response interface {
	StatusCode() int
	GetBody() []byte
}

// check fails t unless the call succeeded with status want.
func check(t *testing.T, what string, want int, r response, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if r.StatusCode() != want {
		t.Fatalf("%s: status %d, want %d: %s", what, r.StatusCode(), want, r.GetBody())
	}
}

// storageLocation returns an enabled storage location: the server's
// default one, or a new local one when there is none.
func storageLocation(ctx context.Context, t *testing.T, c *apiclient.ClientWithResponses) string {
	t.Helper()
	ls, err := c.ListStorageLocationsWithResponse(ctx, nil)
	check(t, "list storage locations", http.StatusOK, ls, err)
	for _, l := range *ls.JSON200 {
		if l.Enabled {
			return l.Id
		}
	}
	loc, err := c.CreateStorageLocationWithResponse(ctx, apiclient.StorageLocationWrite{
		Name: "local", Config: map[string]string{"path": t.TempDir()}})
	check(t, "create storage location", http.StatusCreated, loc, err)
	return loc.JSON201.Id
}

// waitCompleted polls execution id until it ends and fails t unless it
// completed.
func waitCompleted(ctx context.Context, t *testing.T, c *apiclient.ClientWithResponses, id string) *apiclient.Execution {
	t.Helper()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		r, err := c.GetExecutionWithResponse(ctx, id)
		check(t, "get execution "+id, http.StatusOK, r, err)
		switch x := r.JSON200; x.Status {
		case apiclient.ExecutionStatusCompleted:
			return x
		case apiclient.ExecutionStatusFailed, apiclient.ExecutionStatusCancelled:
			t.Fatalf("execution %s (%s) ended %s: %s", id, x.Operation, x.Status, deref(x.ErrorMessage))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("execution %s did not complete: %v", id, ctx.Err())
		case <-tick.C:
		}
	}
}

// namesLocation reports whether problem p has an error detail at loc.
func namesLocation(p *apiclient.ErrorModel, loc string) bool {
	return p != nil && p.Errors != nil && slices.ContainsFunc(*p.Errors, func(d apiclient.ErrorDetail) bool {
		return deref(d.Location) == loc
	})
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func fetchServedDocument(ctx context.Context, t *testing.T, url string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+specgen.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("get %s: %v", specgen.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get %s: status %d, err %v", specgen.Path, resp.StatusCode, err)
	}
	doc, err := specgen.Canonical(raw)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// withoutServers is the OpenAPI document doc without its servers, in
// specgen's form.
func withoutServers(t *testing.T, doc []byte) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "servers")
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out, err := specgen.Canonical(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// openDB opens the SQLite database at path; the caller closes it before
// the server touches the file.
func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return db
}

func execAll(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db := openDB(t, path)
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// seed creates the database backed up: sampleRows rows of a table.
func seed(t *testing.T, path string) {
	t.Helper()
	execAll(t, path,
		`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL)`,
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < %d)
			INSERT INTO items SELECT i, 'item-' || i || '-' || hex(randomblob(8)), (i * 37) %% 101 FROM n`, sampleRows))
}

// mutate deletes, changes and adds rows.
func mutate(t *testing.T, path string) {
	t.Helper()
	execAll(t, path,
		`DELETE FROM items WHERE id % 3 = 0`,
		`UPDATE items SET qty = qty + 1000 WHERE id % 5 = 0`,
		`INSERT INTO items (name, qty) VALUES ('added after the backup', 1)`)
}

// fingerprint returns the row count and a sha256 of every row, in id order.
func fingerprint(t *testing.T, path string) (int, string) {
	t.Helper()
	db := openDB(t, path)
	defer db.Close()
	rows, err := db.Query(`SELECT id, name, qty FROM items ORDER BY id`)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer rows.Close()
	h, n := sha256.New(), 0
	for rows.Next() {
		var id, qty int64
		var name string
		if err := rows.Scan(&id, &name, &qty); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d\x00%s\x00%d\n", id, name, qty)
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}
