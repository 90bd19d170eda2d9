package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
	"github.com/dataguardian/dataguardian/manifest"
)

// backupSetup creates a SQLite datasource and a job on the server's
// default storage location, and returns the job's ID, the datasource's
// and that location's directory.
func backupSetup(t *testing.T, c client, retention map[string]any) (jobID, dsID, root string) {
	t.Helper()
	var ds httpapi.Datasource
	c.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "app", "type": "sqlite", "path": sqliteApp(t, 200)}, &ds)
	var locs []httpapi.StorageLocation
	c.must(http.StatusOK, "GET", "/api/storage-locations", nil, &locs)
	if len(locs) != 1 || locs[0].Config["path"] == "" {
		t.Fatalf("default storage locations: %+v", locs)
	}
	body := map[string]any{"name": "nightly", "datasource_id": ds.ID, "storage_location_ids": []string{locs[0].ID}, "compression": "gzip"}
	if retention != nil {
		body["retention"] = retention
	}
	var job httpapi.BackupJob
	c.must(http.StatusCreated, "POST", "/api/backup-jobs", body, &job)
	return job.ID, ds.ID, locs[0].Config["path"]
}

// runBackup runs the job and waits for a completed backup.
func runBackup(c client, jobID string) httpapi.Execution {
	c.t.Helper()
	var run httpapi.Execution
	c.must(http.StatusAccepted, "POST", "/api/backup-jobs/"+jobID+"/run", nil, &run)
	x := c.waitExecution(run.ID)
	if x.Status != "completed" {
		c.t.Fatalf("backup %s: %s", x.Status, x.ErrorMessage)
	}
	return x
}

func datasourceBackups(c client, dsID string) map[string]httpapi.Backup {
	c.t.Helper()
	var bs []httpapi.Backup
	c.must(http.StatusOK, "GET", "/api/backups/datasources/"+dsID, nil, &bs)
	out := map[string]httpapi.Backup{}
	for _, b := range bs {
		out[b.ID] = b
	}
	return out
}

// TestPinUnpinOverHTTP: a pinned backup survives retention (max_backups
// 1) and says so; pinning needs write and a completed backup; unpinning
// gives it back to retention.
func TestPinUnpinOverHTTP(t *testing.T) {
	srv := servertest.Start(t, nil)
	c := client{t, srv, srv.Token}
	jobID, dsID, _ := backupSetup(t, c, map[string]any{"max_backups": 1, "auto_delete": true})

	first := runBackup(c, jobID)
	if first.Pinned {
		t.Fatalf("a new backup is pinned: %+v", first)
	}
	reader := apiToken(c, "read")
	if code, b := reader.call("POST", "/api/executions/"+first.ID+"/pin", nil); code != http.StatusForbidden {
		t.Fatalf("pin with a read token: %d %s", code, b)
	}
	var pinned httpapi.Execution
	c.must(http.StatusOK, "POST", "/api/executions/"+first.ID+"/pin", map[string]any{"reason": "antes da migração"}, &pinned)
	if !pinned.Pinned || !strings.Contains(string(pinned.Metadata), `"pinned_reason":"antes da migração"`) {
		t.Fatalf("pinned: %+v %s", pinned, pinned.Metadata)
	}
	var got httpapi.Execution
	c.must(http.StatusOK, "GET", "/api/executions/"+first.ID, nil, &got)
	if !got.Pinned {
		t.Fatalf("GET after pin: %+v", got)
	}

	second := runBackup(c, jobID)
	third := runBackup(c, jobID)
	// Retention runs once a backup is recorded completed: wait for it.
	bs := waitBackups(c, dsID, func(bs map[string]httpapi.Backup) bool { return !bs[second.ID].Restorable })
	if b := bs[first.ID]; !b.Pinned || !b.Restorable || strings.Contains(string(b.Metadata), "retention_deleted_at") {
		t.Fatalf("pinned backup on the Backups tab: %+v %s", b, b.Metadata)
	}
	if b := bs[second.ID]; b.Restorable || !strings.Contains(string(b.Metadata), "retention_deleted_at") {
		t.Fatalf("second backup, beyond max_backups=1: %+v", b)
	}
	if b := bs[third.ID]; !b.Restorable {
		t.Fatalf("newest backup: %+v", b)
	}

	// Only completed backups with files pin.
	code, b := c.call("POST", "/api/executions/"+second.ID+"/pin", nil)
	if code != http.StatusConflict || !strings.Contains(string(b), "retention already deleted") {
		t.Fatalf("pin a deleted backup: %d %s", code, b)
	}
	var restore httpapi.Execution
	c.must(http.StatusAccepted, "POST", "/api/backups/"+third.ID+"/restore", map[string]any{"confirmation_phrase": "RESTAURAR"}, &restore)
	if x := c.waitExecution(restore.ID); x.Status != "completed" {
		t.Fatalf("restore: %+v", x)
	}
	code, b = c.call("POST", "/api/executions/"+restore.ID+"/pin", nil)
	if code != http.StatusConflict || !strings.Contains(string(b), "only a completed backup can be pinned") {
		t.Fatalf("pin a restore: %d %s", code, b)
	}
	if code, _ := c.call("POST", "/api/executions/00000000-0000-4000-8000-000000000000/pin", nil); code != http.StatusNotFound {
		t.Fatalf("pin an unknown execution: %d", code)
	}

	var unpinned httpapi.Execution
	c.must(http.StatusOK, "DELETE", "/api/executions/"+first.ID+"/pin", nil, &unpinned)
	if unpinned.Pinned || strings.Contains(string(unpinned.Metadata), "pinned_reason") {
		t.Fatalf("unpinned: %+v %s", unpinned, unpinned.Metadata)
	}
	runBackup(c, jobID)
	if b := waitBackups(c, dsID, func(bs map[string]httpapi.Backup) bool { return !bs[first.ID].Restorable })[first.ID]; b.Restorable {
		t.Fatalf("unpinned backup kept beyond max_backups=1: %+v", b)
	}
}

// waitBackups reads the datasource's Backups tab until done holds of it,
// for at most 10 s, and returns the last reading.
func waitBackups(c client, dsID string, done func(map[string]httpapi.Backup) bool) map[string]httpapi.Backup {
	c.t.Helper()
	bs := datasourceBackups(c, dsID)
	for deadline := time.Now().Add(10 * time.Second); !done(bs) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		bs = datasourceBackups(c, dsID)
	}
	return bs
}

// TestBackupsTabShowsMissingManifest: a completed backup whose
// manifest.json was removed from disk shows its copy missing and is not
// restorable, once a retry-upload or the cleanup pass (here the one at
// start) looked at it; its other files are kept.
func TestBackupsTabShowsMissingManifest(t *testing.T) {
	srv := servertest.Start(t, nil)
	c := client{t, srv, srv.Token}
	jobID, dsID, root := backupSetup(t, c, nil)
	removeManifest := func(x httpapi.Execution) string {
		t.Helper()
		dir := filepath.Join(root, filepath.FromSlash(x.BackupPath))
		if err := os.Remove(filepath.Join(dir, manifest.FileName)); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	checkMissing := func(c client, x httpapi.Execution) bool {
		t.Helper()
		b, ok := datasourceBackups(c, dsID)[x.ID]
		if !ok || len(b.Storages) != 1 {
			t.Fatalf("backup %s on the Backups tab: %+v", x.ID, b)
		}
		if b.Storages[0].Status != "missing" {
			return false
		}
		if b.Restorable || !strings.Contains(b.Storages[0].ErrorMessage, manifest.FileName) {
			t.Fatalf("backup without its manifest: %+v", b)
		}
		return true
	}

	// A retry-upload finds it: nothing to copy from, the copy is missing.
	a := runBackup(c, jobID)
	removeManifest(a)
	if code, b := c.call("POST", "/api/executions/"+a.ID+"/retry-upload", nil); code != http.StatusConflict {
		t.Fatalf("retry-upload without a verified copy: %d %s", code, b)
	}
	if !checkMissing(c, a) {
		t.Fatalf("after retry-upload: %+v", datasourceBackups(c, dsID)[a.ID].Storages)
	}

	// The cleanup pass a server runs at start finds it too, and keeps its files.
	bk := runBackup(c, jobID)
	dir := removeManifest(bk)
	if !datasourceBackups(c, dsID)[bk.ID].Restorable {
		t.Fatal("backup not restorable before anything looked at it")
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	srv = servertest.Start(t, &servertest.Options{DataDir: srv.DataDir})
	c = client{t, srv, c.token}
	for deadline := time.Now().Add(30 * time.Second); !checkMissing(c, bk); {
		if time.Now().After(deadline) {
			t.Fatalf("still not missing after a restart: %+v", datasourceBackups(c, dsID)[bk.ID].Storages)
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("run folder %s: %v entries, %v", dir, len(entries), err)
	}
}
