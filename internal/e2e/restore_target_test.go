package e2e

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
)

// A restore naming target_datasource_id fills that datasource and leaves
// the backup's own untouched; a target of another type or an unknown one
// is refused before anything is queued.
func TestRestoreIntoAnotherDatasource(t *testing.T) {
	srv := servertest.Start(t, nil)
	c := client{t, srv, srv.Token}
	src := sqliteApp(t, 300)
	wantRows, wantSum := content(t, src)
	other := filepath.Join(t.TempDir(), "copy.db")

	var a, b, dir httpapi.Datasource
	c.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "a", "type": "sqlite", "path": src}, &a)
	c.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "b", "type": "sqlite", "path": other}, &b)
	c.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "dir", "type": "files", "path": t.TempDir()}, &dir)
	var locs []httpapi.StorageLocation
	c.must(http.StatusOK, "GET", "/api/storage-locations", nil, &locs)
	var job httpapi.BackupJob
	c.must(http.StatusCreated, "POST", "/api/backup-jobs", map[string]any{"name": "a", "datasource_id": a.ID,
		"storage_location_ids": []string{locs[0].ID}}, &job)
	var x httpapi.Execution
	c.must(http.StatusAccepted, "POST", "/api/backup-jobs/"+job.ID+"/run", nil, &x)
	if x = c.waitExecution(x.ID); x.Status != "completed" {
		t.Fatalf("backup: %s %s", x.Status, x.ErrorMessage)
	}
	// The source changes after its backup: the restore must not touch it.
	mustExec(t, src, `INSERT INTO orders (item) VALUES ('after the backup')`)

	restore := func(target string) map[string]any {
		return map[string]any{"confirmation_phrase": "RESTAURAR", "target_datasource_id": target}
	}
	c.problemAt("body.target_datasource_id", "POST", "/api/backups/"+x.ID+"/restore", restore(dir.ID))
	c.problemAt("body.target_datasource_id", "POST", "/api/backups/"+x.ID+"/restore", restore("00000000-0000-0000-0000-000000000000"))
	var r httpapi.Execution
	c.must(http.StatusAccepted, "POST", "/api/backups/"+x.ID+"/restore", restore(b.ID), &r)
	if r = c.waitExecution(r.ID); r.Status != "completed" {
		t.Fatalf("restore into b: %s %s", r.Status, r.ErrorMessage)
	}
	if rows, sum := content(t, other); rows != wantRows || sum != wantSum {
		t.Fatalf("b holds %d rows (%s), want the backup's %d (%s)", rows, sum, wantRows, wantSum)
	}
	if rows, _ := content(t, src); rows != wantRows+1 {
		t.Fatalf("the source holds %d rows after a restore elsewhere, want its own %d", rows, wantRows+1)
	}
}
