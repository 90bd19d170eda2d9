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

	o := newOffsiteJob(t, admin, offsite.ID)
	backup := runBackup(admin, o.job.ID)
	for _, name := range []string{"manifest.json", "SHA256SUMS", "RECOVERY.txt", "backup.db.zst"} {
		if _, err := os.Stat(filepath.Join(root, backup.BackupPath, name)); err != nil {
			t.Errorf("on the SFTP server: %v", err)
		}
	}
	o.restoreFrom(t, admin, backup.ID, offsite.ID)
}
