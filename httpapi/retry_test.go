package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/dataguardian/dataguardian/httpapi"
)

// Backup jobs carry their retry settings: defaults when a request leaves
// them out, validated bounds, changed by PUT and kept by a PUT without
// them; a failed run through the API shows its retry with retry_of.
func TestBackupJobRetrySettings(t *testing.T) {
	e, app := newEngine(t)
	c := newServer(t, e)
	ds := create[httpapi.Datasource](c, "/api/datasources", map[string]any{"name": "app", "type": "sqlite", "path": app})
	loc := create[httpapi.StorageLocation](c, "/api/storage-locations", map[string]any{"name": "disk", "config": map[string]string{"path": t.TempDir()}})
	newJob := func(name string, extra map[string]any) (int, []byte) {
		body := map[string]any{"name": name, "datasource_id": ds.ID, "storage_location_ids": []string{loc.ID}}
		for k, v := range extra {
			body[k] = v
		}
		code, b, _ := c.do("POST", "/api/backup-jobs", body)
		return code, b
	}

	code, b := newJob("defaults", nil)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	job := decode[httpapi.BackupJob](t, b)
	if job.RetryAttempts != 2 || job.RetryDelaySeconds != 300 {
		t.Fatalf("job created without retry fields: %d/%d; want 2/300", job.RetryAttempts, job.RetryDelaySeconds)
	}
	code, b = newJob("never", map[string]any{"retry_attempts": 0, "retry_delay_seconds": 10})
	if got := decode[httpapi.BackupJob](t, b); code != http.StatusCreated || got.RetryAttempts != 0 || got.RetryDelaySeconds != 10 {
		t.Fatalf("create with retry_attempts 0: %d %s", code, b)
	}

	for _, bad := range []struct {
		field string
		value int
	}{{"retry_attempts", -1}, {"retry_attempts", 11}, {"retry_delay_seconds", 9}, {"retry_delay_seconds", 86401}} {
		code, b = newJob("bad", map[string]any{bad.field: bad.value})
		wantProblem(t, "create with "+bad.field, code, b, http.StatusUnprocessableEntity, "body."+bad.field)
		code, b, _ = c.do("PUT", "/api/backup-jobs/"+job.ID, map[string]any{"name": "defaults",
			"storage_location_ids": []string{loc.ID}, bad.field: bad.value})
		wantProblem(t, "update with "+bad.field, code, b, http.StatusUnprocessableEntity, "body."+bad.field)
	}

	update := func(body map[string]any) httpapi.BackupJob {
		t.Helper()
		body["name"], body["storage_location_ids"] = "defaults", []string{loc.ID}
		code, b, _ := c.do("PUT", "/api/backup-jobs/"+job.ID, body)
		if code != http.StatusOK {
			t.Fatalf("update %v: %d %s", body, code, b)
		}
		return decode[httpapi.BackupJob](t, b)
	}
	if got := update(map[string]any{"retry_attempts": 1, "retry_delay_seconds": 60}); got.RetryAttempts != 1 || got.RetryDelaySeconds != 60 {
		t.Fatalf("after PUT 1/60: %d/%d", got.RetryAttempts, got.RetryDelaySeconds)
	}
	if got := update(map[string]any{}); got.RetryAttempts != 1 || got.RetryDelaySeconds != 60 {
		t.Fatalf("after a PUT without retry fields: %d/%d; want them unchanged (1/60)", got.RetryAttempts, got.RetryDelaySeconds)
	}
	code, b, _ = c.do("GET", "/api/backup-jobs/"+job.ID, nil)
	if got := decode[httpapi.BackupJob](t, b); code != http.StatusOK || got.RetryAttempts != 1 || got.RetryDelaySeconds != 60 {
		t.Fatalf("get: %d %s", code, b)
	}

	// A run that fails (the database file is gone) queues its retry.
	if err := os.Remove(app); err != nil {
		t.Fatal(err)
	}
	code, b, _ = c.do("POST", "/api/backup-jobs/"+job.ID+"/run", nil)
	if code != http.StatusAccepted {
		t.Fatalf("run: %d %s", code, b)
	}
	run := decode[httpapi.Execution](t, b)
	if err := e.ExecuteBackup(context.Background(), run.ID); err == nil {
		t.Fatal("backup of a missing database succeeded")
	}
	code, b, _ = c.do("GET", "/api/backup-jobs/"+job.ID+"/executions", nil)
	xs := decode[[]httpapi.Execution](t, b)
	if code != http.StatusOK || len(xs) != 2 {
		t.Fatalf("executions after a failure: %d %s; want the failure and its retry", code, b)
	}
	retry := xs[0]
	if retry.ID == run.ID {
		retry = xs[1]
	}
	var meta struct {
		RetryOf string `json:"retry_of"`
	}
	if err := json.Unmarshal(retry.Metadata, &meta); err != nil || retry.Status != "queued" || retry.Attempt != 2 || meta.RetryOf != run.ID {
		t.Fatalf("retry %+v (metadata %s, %v); want queued attempt 2 with retry_of %s", retry, retry.Metadata, err, run.ID)
	}
}
