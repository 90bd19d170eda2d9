package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
	"github.com/dataguardian/dataguardian/manifest"
)

// TestEncryptedBackups: a job encrypting to an age public key (a secret
// key or garbage refused at its field); its backup's files end in .age,
// its manifest names the public key, no byte of the data is in clear. A
// server without the key refuses to restore, naming the key, and leaves
// the target untouched; restarted with --age-identity it restores the
// rows. Dropping the recipients stops encrypting new backups.
func TestEncryptedBackups(t *testing.T) {
	t.Parallel()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(keyFile, []byte("# created: by the test\n# public key: "+id.Recipient().String()+"\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	srv := servertest.Start(t, &servertest.Options{DataDir: dataDir})
	admin := client{t, srv, srv.Token}
	jobID, dsID, root := backupSetup(t, admin, nil)
	app := datasourcePath(t, admin, dsID)
	wantRows, wantSum := content(t, app)

	for what, keys := range map[string][]string{"a secret key": {id.String()}, "garbage": {"age1nope"}} {
		b := admin.must(http.StatusUnprocessableEntity, "PUT", "/api/backup-jobs/"+jobID, map[string]any{"name": "nightly",
			"storage_location_ids": jobLocations(t, admin, jobID), "encryption_recipients": keys}, nil)
		if p := decodeProblem(t, b); len(p.Errors) == 0 || !strings.HasPrefix(p.Errors[0].Location, "body.encryption_recipients") ||
			strings.Contains(string(b), id.String()[16:]) {
			t.Errorf("%s as a recipient: %s", what, b)
		}
	}
	var job httpapi.BackupJob
	admin.must(http.StatusOK, "PUT", "/api/backup-jobs/"+jobID, map[string]any{"name": "nightly",
		"storage_location_ids": jobLocations(t, admin, jobID), "encryption_recipients": []string{id.Recipient().String()}}, &job)
	if len(job.EncryptionRecipients) != 1 {
		t.Fatalf("job: %+v", job)
	}
	enc := runBackup(admin, jobID)
	m, err := manifest.Load(t.Context(), mustLocal(t, root), enc.BackupPath)
	if err != nil {
		t.Fatal(err)
	}
	if m.Encryption == nil || m.Encryption.Recipients[0] != id.Recipient().String() || !strings.HasSuffix(m.Chunks[0].File, ".age") {
		t.Fatalf("manifest of the encrypted backup: %+v %+v", m.Encryption, m.Chunks)
	}
	part, _ := os.ReadFile(filepath.Join(root, enc.BackupPath, m.Chunks[0].File))
	if !bytes.HasPrefix(part, []byte("age-encryption.org/v1")) {
		t.Errorf("the part is not age ciphertext: %.30q", part)
	}

	// Without the key: refused before the target is touched.
	mustExec(t, app, `DELETE FROM orders WHERE id > 100`)
	damagedRows, damagedSum := content(t, app)
	var restore httpapi.Execution
	admin.must(http.StatusAccepted, "POST", "/api/backups/"+enc.ID+"/restore", map[string]any{"confirmation_phrase": "RESTAURAR"}, &restore)
	x := admin.waitExecution(restore.ID)
	if x.Status != "failed" || !strings.Contains(x.ErrorMessage, id.Recipient().String()) {
		t.Errorf("restore without the key: %s %q", x.Status, x.ErrorMessage)
	}
	if n, sum := content(t, app); n != damagedRows || sum != damagedSum {
		t.Fatalf("the refused restore touched the target: %d rows", n)
	}

	// With the key: the rows come back.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	srv = servertest.Start(t, &servertest.Options{DataDir: dataDir, Args: []string{"--age-identity", keyFile}})
	admin = client{t, srv, srv.Token}
	admin.must(http.StatusAccepted, "POST", "/api/backups/"+enc.ID+"/restore", map[string]any{"confirmation_phrase": "RESTAURAR"}, &restore)
	if x := admin.waitExecution(restore.ID); x.Status != "completed" {
		t.Fatalf("restore with the key: %+v", x)
	}
	if n, sum := content(t, app); n != wantRows || sum != wantSum {
		t.Fatalf("after the restore: %d rows (%s), want %d (%s)", n, sum, wantRows, wantSum)
	}
	if strings.Contains(srv.Stderr(), id.String()) {
		t.Error("the server logged the secret key")
	}

	// Recipients dropped: new backups are in clear again.
	admin.must(http.StatusOK, "PUT", "/api/backup-jobs/"+jobID, map[string]any{"name": "nightly",
		"storage_location_ids": jobLocations(t, admin, jobID), "encryption_recipients": []string{}}, &job)
	clear := runBackup(admin, jobID)
	if m, err := manifest.Load(t.Context(), mustLocal(t, root), clear.BackupPath); err != nil || m.Encryption != nil {
		t.Errorf("a backup after the recipients were dropped: %+v, %v", m, err)
	}
}

func jobLocations(t *testing.T, c client, jobID string) []string {
	t.Helper()
	var j httpapi.BackupJob
	c.must(http.StatusOK, "GET", "/api/backup-jobs/"+jobID, nil, &j)
	return j.StorageLocationIDs
}

func datasourcePath(t *testing.T, c client, dsID string) string {
	t.Helper()
	var ds httpapi.Datasource
	c.must(http.StatusOK, "GET", "/api/datasources/"+dsID, nil, &ds)
	return ds.Path
}
