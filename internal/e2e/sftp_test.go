package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// TestBackupToSFTP: an SFTP storage location on a real SSH server on
// loopback, created over the API with a pinned host key (a server showing
// another key, and a wrong password, refused at their fields; the secret
// never shown again, nor sent to a new host); a job writing to the local
// disk and over SFTP; the run folder on the server as on disk; a restore
// from the SFTP copy brings the rows back.
func TestBackupToSFTP(t *testing.T) {
	t.Parallel()
	ssh := testsvc.StartSFTP(t)
	other := testsvc.StartSFTP(t) // another server: another host key
	srv := servertest.Start(t, nil)
	admin := client{t, srv, srv.Token}
	root := filepath.Join(ssh.Dir, "backups")
	cfg := map[string]string{"host": ssh.Host, "port": strconv.Itoa(ssh.Port), "user": ssh.User, "path": root,
		"host_key": other.HostKey, "password": ssh.Password}
	for _, c := range []struct {
		field string
		edit  func()
	}{
		{"body.config.host_key", func() {}},
		{"body.config.password", func() { cfg["host_key"], cfg["password"] = ssh.HostKey, "wrong-pw" }},
	} {
		field := c.field
		c.edit()
		b := admin.must(http.StatusUnprocessableEntity, "POST", "/api/storage-locations", map[string]any{"name": "offsite", "type": "sftp", "config": cfg}, nil)
		if p := decodeProblem(t, b); len(p.Errors) == 0 || p.Errors[0].Location != field {
			t.Errorf("want a problem at %s: %s", field, b)
		}
	}
	cfg["password"] = ssh.Password
	var offsite httpapi.StorageLocation
	b := admin.must(http.StatusCreated, "POST", "/api/storage-locations", map[string]any{"name": "offsite", "type": "sftp", "config": cfg}, &offsite)
	if strings.Contains(string(b), ssh.Password) {
		t.Errorf("the created location shows the password: %s", b)
	}
	moved := map[string]string{"host": other.Host, "port": strconv.Itoa(other.Port), "user": ssh.User, "path": root, "host_key": other.HostKey}
	b = admin.must(http.StatusUnprocessableEntity, "PUT", "/api/storage-locations/"+offsite.ID, map[string]any{"name": "offsite", "type": "sftp", "config": moved}, nil)
	if p := decodeProblem(t, b); len(p.Errors) == 0 || p.Errors[0].Location != "body.config.password" {
		t.Errorf("moved to another host without the password: %s", b)
	}

	app := sqliteApp(t, 200)
	wantRows, wantSum := content(t, app)
	var ds httpapi.Datasource
	admin.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "shop", "type": "sqlite", "path": app}, &ds)
	var locs []httpapi.StorageLocation
	admin.must(http.StatusOK, "GET", "/api/storage-locations", nil, &locs)
	var job httpapi.BackupJob
	admin.must(http.StatusCreated, "POST", "/api/backup-jobs", map[string]any{"name": "sftp-nightly", "datasource_id": ds.ID,
		"storage_location_ids": []string{locs[0].ID, offsite.ID}}, &job)
	backup := runBackup(admin, job.ID)
	for _, name := range []string{"manifest.json", "SHA256SUMS", "RECOVERY.txt", "backup.db.gz"} {
		if _, err := os.Stat(filepath.Join(root, backup.BackupPath, name)); err != nil {
			t.Errorf("on the SFTP server: %v", err)
		}
	}
	mustExec(t, app, `DELETE FROM orders`)
	var restore httpapi.Execution
	admin.must(http.StatusAccepted, "POST", "/api/backups/"+backup.ID+"/restore", map[string]any{
		"confirmation_phrase": "RESTAURAR", "storage_location_id": offsite.ID}, &restore)
	if x := admin.waitExecution(restore.ID); x.Status != "completed" {
		t.Fatalf("restore from SFTP: %+v", x)
	}
	if n, sum := content(t, app); n != wantRows || sum != wantSum {
		t.Fatalf("after the restore from SFTP: %d rows (%s), want %d (%s)", n, sum, wantRows, wantSum)
	}
}
