package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// TestBackupToS3: an S3 storage location on a real S3 server (versitygw on
// loopback) created over the API (its secret never shown again, a wrong
// one refused at its field); a job writing to the local disk and to S3;
// the run folder in the bucket as on disk; a restore from the S3 copy
// brings the rows back; a part deleted from the bucket makes that copy
// missing and its restore refused before the target is touched, while the
// local copy restores; with the S3 server down, the next backup keeps its
// local copy and marks the S3 one unreachable, and the earlier backup's
// copies stay as they were.
func TestBackupToS3(t *testing.T) {
	t.Parallel()
	s3srv := testsvc.StartS3(t)
	bucket := s3srv.NewBucket(t)
	srv := servertest.Start(t, nil)
	admin := client{t, srv, srv.Token}

	cfg := map[string]string{"endpoint": s3srv.Endpoint, "bucket": bucket, "prefix": "dg/", "path_style": "true",
		"access_key_id": s3srv.AccessKey, "secret_access_key": "wrong-secret"}
	b := admin.must(http.StatusUnprocessableEntity, "POST", "/api/storage-locations", map[string]any{"name": "offsite", "type": "s3", "config": cfg}, nil)
	if p := decodeProblem(t, b); len(p.Errors) == 0 || p.Errors[0].Location != "body.config.access_key_id" {
		t.Errorf("a wrong secret: %s", b)
	}
	cfg["secret_access_key"] = s3srv.SecretKey
	var offsite httpapi.StorageLocation
	b = admin.must(http.StatusCreated, "POST", "/api/storage-locations", map[string]any{"name": "offsite", "type": "s3", "config": cfg}, &offsite)
	if strings.Contains(string(b), s3srv.SecretKey) || offsite.Config["bucket"] != bucket {
		t.Errorf("the created location: %s", b)
	}

	o := newOffsiteJob(t, admin, offsite.ID)
	ds, local, job := o.ds, o.localID, o.job
	first := runBackup(admin, job.ID)

	// The run folder in the bucket: the same files as on disk.
	var keys []string
	for o := range s3srv.Client(t).ListObjectsIter(t.Context(), bucket, minio.ListObjectsOptions{Prefix: "dg/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, strings.TrimPrefix(o.Key, "dg/"+first.BackupPath+"/"))
	}
	for _, want := range []string{"manifest.json", "SHA256SUMS", "RECOVERY.txt"} {
		if !slices.Contains(keys, want) {
			t.Errorf("the bucket lacks %s: %v", want, keys)
		}
	}
	copies := datasourceBackups(admin, ds.ID)[first.ID].Storages
	if len(copies) != 2 || copies[0].Status != "available" || copies[1].Status != "available" {
		t.Fatalf("copies of the first backup: %+v", copies)
	}

	o.restoreFrom(t, admin, first.ID, offsite.ID)

	// A part deleted from the bucket behind our back: a restore from that
	// copy is refused before the target is touched and the copy shows
	// missing; the local copy stays available and restores.
	damaged := runBackup(admin, job.ID)
	removed := 0
	for obj := range s3srv.Client(t).ListObjectsIter(t.Context(), bucket, minio.ListObjectsOptions{Prefix: "dg/" + damaged.BackupPath + "/backup.", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if err := s3srv.Client(t).RemoveObject(t.Context(), bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		removed++
	}
	if removed == 0 {
		t.Fatal("no part to remove")
	}
	mustExec(t, o.app, `DELETE FROM orders WHERE id > 10`)
	beforeRows, beforeSum := content(t, o.app)
	var refused httpapi.Execution
	admin.must(http.StatusAccepted, "POST", "/api/backups/"+damaged.ID+"/restore", map[string]any{
		"confirmation_phrase": "RESTAURAR", "storage_location_id": offsite.ID}, &refused)
	if x := admin.waitExecution(refused.ID); x.Status != "failed" {
		t.Errorf("a restore from a copy missing its part: %s", x.Status)
	}
	if n, sum := content(t, o.app); n != beforeRows || sum != beforeSum {
		t.Fatalf("the refused restore touched the target: %d rows", n)
	}
	status := map[string]string{}
	for _, c := range datasourceBackups(admin, ds.ID)[damaged.ID].Storages {
		status[c.StorageLocationID] = c.Status
	}
	if status[offsite.ID] != "missing" || status[local] != "available" {
		t.Errorf("copies after the part was deleted: %v; want the S3 copy missing, the local one available", status)
	}
	o.restoreFrom(t, admin, damaged.ID, local)

	// The S3 server down: the local copy is written, the S3 one is not.
	s3srv.Kill()
	var run httpapi.Execution
	admin.must(http.StatusAccepted, "POST", "/api/backup-jobs/"+job.ID+"/run", nil, &run)
	second := admin.waitExecution(run.ID)
	got := map[string]string{}
	for _, c := range datasourceBackups(admin, ds.ID)[second.ID].Storages {
		got[c.StorageLocationID] = c.Status
	}
	if second.Status != "completed" || got[local] != "available" || got[offsite.ID] != "unreachable" {
		t.Errorf("a backup with S3 down: %s, copies %v; want completed with the local copy available and the S3 one unreachable", second.Status, got)
	}
	if c := datasourceBackups(admin, ds.ID)[first.ID].Storages; len(c) != 2 || c[0].Status != "available" {
		t.Errorf("the first backup's copies after the failure: %+v", c)
	}
}

// offsiteJob is a SQLite datasource of 300 rows and a job writing it to the
// server's local storage location and to an off-site one.
type offsiteJob struct {
	app      string // the database file
	wantRows int
	wantSum  string
	ds       httpapi.Datasource
	localID  string
	job      httpapi.BackupJob
}

func newOffsiteJob(t *testing.T, admin client, offsiteID string) offsiteJob {
	t.Helper()
	o := offsiteJob{app: sqliteApp(t, 300)}
	o.wantRows, o.wantSum = content(t, o.app)
	admin.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "shop", "type": "sqlite", "path": o.app}, &o.ds)
	var locs []httpapi.StorageLocation
	admin.must(http.StatusOK, "GET", "/api/storage-locations", nil, &locs)
	for _, l := range locs {
		if l.Type == "local" {
			o.localID = l.ID
		}
	}
	admin.must(http.StatusCreated, "POST", "/api/backup-jobs", map[string]any{"name": "offsite-nightly", "datasource_id": o.ds.ID,
		"storage_location_ids": []string{o.localID, offsiteID}, "compression": "zstd"}, &o.job)
	return o
}

// restoreFrom empties the database, restores backupID from the copy on
// storage location locID, and checks that the rows came back.
func (o offsiteJob) restoreFrom(t *testing.T, admin client, backupID, locID string) {
	t.Helper()
	mustExec(t, o.app, `DELETE FROM orders`)
	var restore httpapi.Execution
	admin.must(http.StatusAccepted, "POST", "/api/backups/"+backupID+"/restore", map[string]any{
		"confirmation_phrase": "RESTAURAR", "storage_location_id": locID}, &restore)
	if x := admin.waitExecution(restore.ID); x.Status != "completed" {
		t.Fatalf("restore from %s: %+v", locID, x)
	}
	if n, sum := content(t, o.app); n != o.wantRows || sum != o.wantSum {
		t.Fatalf("after the restore from %s: %d rows (%s), want %d (%s)", locID, n, sum, o.wantRows, o.wantSum)
	}
}
