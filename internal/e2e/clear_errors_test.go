package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
)

// A storage location whose directory cannot be created is a 422 naming
// config.path, not a server error.
func TestStoragePathNotCreatable(t *testing.T) {
	srv := servertest.Start(t, nil)
	c := client{t, srv, srv.Token}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, filepath.Join(file, "backups")} {
		msg := c.problemAt("body.config.path", "POST", "/api/storage-locations",
			map[string]any{"name": "bad", "type": "local", "config": map[string]string{"path": path}})
		if !strings.Contains(msg, "choose a directory") {
			t.Errorf("the refusal of %s does not say what to do: %s", path, msg)
		}
	}
}

// A datasource missing what its type needs, or a schedule that is no
// five-field cron expression or never fires, is refused when it is
// registered, with a 422 naming the field, not at its first run.
func TestRequiredFieldsRefusedAtRegistration(t *testing.T) {
	srv := servertest.Start(t, nil)
	c := client{t, srv, srv.Token}
	for field, body := range map[string]map[string]any{
		"body.database": {"name": "pg", "type": "postgres", "host": "127.0.0.1"},
		"body.username": {"name": "my", "type": "mysql", "host": "127.0.0.1", "database": "app"},
		"body.path":     {"name": "f", "type": "files"},
	} {
		c.problemAt(field, "POST", "/api/datasources", body)
	}
	var ds httpapi.Datasource
	c.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "f", "type": "files", "path": t.TempDir()}, &ds)
	var locs []httpapi.StorageLocation
	c.must(http.StatusOK, "GET", "/api/storage-locations", nil, &locs)
	for _, expr := range []string{"@every 1s", "0 0 31 2 *", "61 * * * *"} {
		c.problemAt("body.schedule", "POST", "/api/backup-jobs", map[string]any{"name": "j", "datasource_id": ds.ID,
			"storage_location_ids": []string{locs[0].ID}, "schedule": expr})
	}
}
