package httpapi_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/httpapi"
)

// What the OpenAPI document says a backup job defaults to is what a job
// created without those fields gets.
func TestBackupJobDefaultsAsDocumented(t *testing.T) {
	e, app := newEngine(t)
	c := newServer(t, e)
	ds := create[httpapi.Datasource](c, "/api/datasources", map[string]any{"name": "app", "type": "sqlite", "path": app})
	loc := create[httpapi.StorageLocation](c, "/api/storage-locations", map[string]any{"name": "disk", "type": "local",
		"config": map[string]string{"path": filepath.Join(t.TempDir(), "b")}})
	job := create[httpapi.BackupJob](c, "/api/backup-jobs", map[string]any{"name": "j", "datasource_id": ds.ID,
		"storage_location_ids": []string{loc.ID}})
	if job.Compression != string(engine.DefaultCompression) {
		t.Fatalf("a job created without compression got %q, want %q", job.Compression, engine.DefaultCompression)
	}
	_, doc, _ := c.do("GET", "/openapi.json", nil)
	var spec struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Description string `json:"description"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &spec); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"BackupJobCreate", "BackupJobUpdate"} {
		d := spec.Components.Schemas[name].Properties["compression"].Description
		if !strings.Contains(d, "default "+job.Compression) {
			t.Errorf("%s.compression says %q; jobs get %s", name, d, job.Compression)
		}
	}
}
