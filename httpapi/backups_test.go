package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/httpapi"
)

// completedBackup registers the SQLite database app as a datasource with a
// job on a local storage and runs one backup to completion.
func completedBackup(t *testing.T, e *engine.Engine, app string) (*engine.Datasource, *engine.StorageLocation, *engine.Execution) {
	t.Helper()
	ctx := context.Background()
	ds := &engine.Datasource{Name: "app", Type: "sqlite", Path: app}
	if err := e.CreateDatasource(ctx, ds, ""); err != nil {
		t.Fatal(err)
	}
	disk := &engine.StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": filepath.Join(t.TempDir(), "backups")}}
	if err := e.CreateStorageLocation(ctx, disk); err != nil {
		t.Fatal(err)
	}
	job := &engine.BackupJob{Name: "nightly", DatasourceID: ds.ID, StorageLocationIDs: []string{disk.ID}}
	if err := e.CreateBackupJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	x, err := e.RunBackup(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != engine.ExecutionCompleted {
		t.Fatalf("backup %s: %s", x.Status, x.ErrorMessage)
	}
	return ds, disk, x
}

type backupsClient struct {
	t     *testing.T
	url   string
	token string
}

func (c backupsClient) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var hdr []string
	if c.token != "" {
		hdr = []string{"Authorization", "Bearer " + c.token}
	}
	code, b, _ := resClient{c.t, c.url}.do(method, path, body, hdr...)
	return code, b
}

// TestBackupsTabServer drives the Backups tab and a restore over real HTTP.
func TestBackupsTabServer(t *testing.T) {
	ctx := context.Background()
	e, app := newEngine(t)
	ds, disk, backup := completedBackup(t, e, app)
	srv := httptest.NewServer(httpapi.New(e, &httpapi.Options{Logger: quiet()}))
	defer srv.Close()
	c := backupsClient{t: t, url: srv.URL}

	code, b := c.do("GET", "/api/backups/datasources", nil)
	dss := decode[[]httpapi.BackupDatasource](t, b)
	if code != 200 || len(dss) != 1 {
		t.Fatalf("backup datasources: %d %s", code, b)
	}
	if d := dss[0]; d.DatasourceID != ds.ID || d.BackupCount != 1 || d.LastBackupExecutionID != backup.ID || d.LastBackupAt.IsZero() || d.Name != "app" {
		t.Errorf("backup datasource %+v", d)
	}

	code, b = c.do("GET", "/api/backups/datasources/"+ds.ID, nil)
	backups := decode[[]httpapi.Backup](t, b)
	if code != 200 || len(backups) != 1 {
		t.Fatalf("datasource backups: %d %s", code, b)
	}
	got := backups[0]
	if got.ID != backup.ID || got.Operation != "backup" || got.Status != "completed" || !got.Restorable {
		t.Errorf("backup %+v", got)
	}
	if len(got.Storages) != 1 || got.Storages[0].StorageLocationID != disk.ID || got.Storages[0].Status != "available" ||
		got.Storages[0].StorageLocationName != "disk" {
		t.Errorf("storages %+v", got.Storages)
	}
	if code, b = c.do("GET", "/api/backups/datasources/00000000-0000-0000-0000-000000000000", nil); code != 404 {
		t.Errorf("unknown datasource: %d %s", code, b)
	}

	restores := func() int {
		xs, err := e.Store().ListExecutions(ctx, engine.ExecutionFilter{Operation: engine.OperationRestore})
		if err != nil {
			t.Fatal(err)
		}
		return len(xs)
	}
	for _, body := range []map[string]any{{"confirmation_phrase": "restaurar"}, {}} {
		code, b = c.do("POST", "/api/backups/"+backup.ID+"/restore", body)
		if code != http.StatusUnprocessableEntity {
			t.Fatalf("wrong phrase %v: %d %s", body, code, b)
		}
		p := decode[problemJSON](t, b)
		wantLocation(t, p, "body.confirmation_phrase")
		if !strings.Contains(p.Detail, `"RESTAURAR"`) {
			t.Errorf("problem does not name the phrase: %s", b)
		}
	}
	if n := restores(); n != 0 {
		t.Fatalf("wrong phrase queued %d restores", n)
	}
	code, b = c.do("POST", "/api/backups/"+backup.ID+"/restore", map[string]any{"confirmation_phrase": "RESTAURAR", "confirm": true})
	if code != 422 || !bytes.Contains(b, []byte("confirm")) {
		t.Errorf("unknown field: %d %s", code, b)
	}

	code, b = c.do("POST", "/api/backups/"+backup.ID+"/restore",
		map[string]any{"confirmation_phrase": "RESTAURAR", "storage_location_id": disk.ID})
	x := decode[httpapi.Execution](t, b)
	if code != http.StatusAccepted || x.Operation != "restore" || x.Status != "queued" || x.SourceExecutionID != backup.ID || x.ID == "" {
		t.Fatalf("restore: %d %s", code, b)
	}
	if n := restores(); n != 1 {
		t.Errorf("%d restores queued, want 1", n)
	}
	// A restore is not itself restorable.
	if code, b = c.do("POST", "/api/backups/"+x.ID+"/restore", map[string]any{"confirmation_phrase": "RESTAURAR"}); code != 409 {
		t.Errorf("restore of a restore: %d %s", code, b)
	}
	// The restore does not appear as a backup.
	_, b = c.do("GET", "/api/backups/datasources/"+ds.ID, nil)
	if n := len(decode[[]httpapi.Backup](t, b)); n != 1 {
		t.Errorf("%d backups after restore, want 1", n)
	}
}

// TestRestorePermissions: with an Auth hook, verification mode needs
// backups.restore_verify and a restore backups.restore.
func TestRestorePermissions(t *testing.T) {
	e, app := newEngine(t)
	_, _, backup := completedBackup(t, e, app)
	srv := httptest.NewServer(httpapi.New(e, &httpapi.Options{Logger: quiet(), Auth: func(r *http.Request) error {
		var p httpapi.PermissionSet
		switch r.Header.Get("Authorization") {
		case "Bearer reader":
			p = httpapi.PermissionSet{"read"}
		case "Bearer restorer":
			p = httpapi.PermissionSet{"read", httpapi.PermRestore}
		case "Bearer verifier":
			p = httpapi.PermissionSet{"read", httpapi.PermRestoreVerify}
		case "Bearer bare": // authenticated, but the hook attached no permissions
			return nil
		default:
			return httpapi.ErrUnauthorized
		}
		*r = *r.WithContext(httpapi.WithPermissions(r.Context(), p))
		return nil
	}}))
	defer srv.Close()
	verify := map[string]any{"confirmation_phrase": "VERIFICAR RESTORE", "verification_mode": true}
	restore := map[string]any{"confirmation_phrase": "RESTAURAR"}
	path := "/api/backups/" + backup.ID + "/restore"

	for _, token := range []string{"reader", "restorer"} {
		code, b := backupsClient{t, srv.URL, token}.do("POST", path, verify)
		if code != http.StatusForbidden || !bytes.Contains(b, []byte("backups.restore_verify")) {
			t.Errorf("%s verification: %d %s", token, code, b)
		}
	}
	if code, b := (backupsClient{t, srv.URL, "reader"}).do("POST", path, restore); code != http.StatusForbidden {
		t.Errorf("reader restore: %d %s", code, b)
	}
	// With an Auth hook, no permissions attached means none held (fail closed).
	if code, b := (backupsClient{t, srv.URL, "bare"}).do("POST", path, restore); code != http.StatusForbidden {
		t.Errorf("restore without attached permissions: %d %s", code, b)
	}
	// With the permission the request reaches the engine: the SQLite driver
	// cannot verify, which is a 422 naming verification_mode, not a 403.
	code, b := backupsClient{t, srv.URL, "verifier"}.do("POST", path, verify)
	if code == http.StatusForbidden || (code != http.StatusAccepted && !bytes.Contains(b, []byte("verification_mode"))) {
		t.Errorf("verifier verification: %d %s", code, b)
	}
	if code, b := (backupsClient{t, srv.URL, "restorer"}).do("POST", path, restore); code != http.StatusAccepted {
		t.Errorf("restorer restore: %d %s", code, b)
	}
	if code, _ := (backupsClient{t, srv.URL, ""}).do("POST", path, restore); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}

	// Without an Auth hook (nothing attached) everything is allowed.
	api := newTestAPI(t, e)
	resp := api.Post(path, verify)
	if resp.Code == http.StatusForbidden {
		t.Errorf("no auth hook: %d %s", resp.Code, resp.Body)
	}
}

func TestNotificationsAPI(t *testing.T) {
	ctx := context.Background()
	e, _ := newEngine(t)
	api := newTestAPI(t, e)
	for _, n := range []*engine.Notification{
		{Type: "connection_lost", Severity: engine.SeverityCritical, Title: "db down", EntityType: "datasource", EntityID: "d1"},
		{Type: "backup_failed", Severity: engine.SeverityWarning, Title: "backup failed"},
		{Type: "connection_lost", Severity: engine.SeverityCritical, Title: "db down again"},
	} {
		if err := e.Store().InsertNotification(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	list := func(query string) []httpapi.Notification {
		t.Helper()
		resp := api.Get("/api/notifications" + query)
		if resp.Code != 200 {
			t.Fatalf("list %s: %d %s", query, resp.Code, resp.Body)
		}
		return decode[[]httpapi.Notification](t, resp.Body.Bytes())
	}
	all := list("")
	if len(all) < 3 {
		t.Fatalf("list: %+v", all)
	}
	base := len(all) - 3 // notifications the engine itself may have recorded
	lost := list("?type=connection_lost")
	if len(lost) != 2 || lost[0].Type != "connection_lost" {
		t.Fatalf("type filter: %+v", lost)
	}
	if got := list("?limit=1&offset=1"); len(got) != 1 || got[0].ID != all[1].ID {
		t.Errorf("paging: %+v", got)
	}

	resp := api.Put("/api/notifications/" + lost[0].ID + "/read")
	if n := decode[httpapi.Notification](t, resp.Body.Bytes()); resp.Code != 200 || !n.Read || n.ID != lost[0].ID {
		t.Fatalf("read: %d %s", resp.Code, resp.Body)
	}
	if got := list("?unread=true&type=connection_lost"); len(got) != 1 || got[0].ID != lost[1].ID {
		t.Errorf("unread after read: %+v", got)
	}
	resp = api.Put("/api/notifications/read-all")
	if r := decode[httpapi.ReadAllResult](t, resp.Body.Bytes()); resp.Code != 200 || r.Updated != int64(2+base) {
		t.Errorf("read-all: %d %s", resp.Code, resp.Body)
	}
	if got := list("?unread=true"); len(got) != 0 {
		t.Errorf("unread after read-all: %+v", got)
	}

	resp = api.Delete("/api/notifications/" + lost[0].ID)
	if resp.Code != http.StatusNoContent {
		t.Errorf("delete: %d %s", resp.Code, resp.Body)
	}
	if got := list("?type=connection_lost"); len(got) != 1 {
		t.Errorf("after delete: %+v", got)
	}
	const missing = "00000000-0000-0000-0000-000000000000"
	for _, r := range []func() int{
		func() int { return api.Delete("/api/notifications/" + lost[0].ID).Code },
		func() int { return api.Put("/api/notifications/" + missing + "/read").Code },
	} {
		if code := r(); code != 404 {
			t.Errorf("missing notification: %d", code)
		}
	}
	if resp := api.Get("/api/notifications?limit=0"); resp.Code != 422 {
		t.Errorf("limit=0: %d", resp.Code)
	}
}

func TestNotificationTemplatesAPI(t *testing.T) {
	e, _ := newEngine(t)
	api := newTestAPI(t, e)
	base := "/api/system/notification-templates"

	resp := api.Post(base, map[string]any{"type": "backup_failed", "channel": "email",
		"subject": "Backup failed: {{.Title}}", "body": "v1 {{.Message}}"})
	v1 := decode[httpapi.NotificationTemplate](t, resp.Body.Bytes())
	if resp.Code != 201 || v1.Version != 1 || v1.Type != "backup_failed" || v1.Channel != "email" || !v1.Active {
		t.Fatalf("create: %d %s", resp.Code, resp.Body)
	}
	resp = api.Post(base+"/"+v1.ID+"/new-version", map[string]any{"body": "v2 {{.Message}}"})
	v2 := decode[httpapi.NotificationTemplate](t, resp.Body.Bytes())
	if resp.Code != 201 || v2.Version != 2 || v2.ID == v1.ID || v2.Subject != v1.Subject || v2.Body != "v2 {{.Message}}" {
		t.Fatalf("new-version: %d %s", resp.Code, resp.Body)
	}
	resp = api.Put(base+"/"+v1.ID, map[string]any{"subject": "Falha: {{.Title}}", "body": "v3"})
	v3 := decode[httpapi.NotificationTemplate](t, resp.Body.Bytes())
	if resp.Code != 200 || v3.Version != 3 || v3.Subject != "Falha: {{.Title}}" {
		t.Fatalf("put: %d %s", resp.Code, resp.Body)
	}
	resp = api.Post(base, map[string]any{"type": "backup_failed", "channel": "webhook", "subject": "{{.Title}}", "body": "{}"})
	if w := decode[httpapi.NotificationTemplate](t, resp.Body.Bytes()); resp.Code != 201 || w.Version != 1 {
		t.Fatalf("create webhook: %d %s", resp.Code, resp.Body)
	}

	resp = api.Get(base)
	ts := decode[[]httpapi.NotificationTemplate](t, resp.Body.Bytes())
	var email []httpapi.NotificationTemplate
	for _, tm := range ts {
		if tm.Type == "backup_failed" && tm.Channel == "email" {
			email = append(email, tm)
		}
	}
	if resp.Code != 200 || len(email) != 3 {
		t.Fatalf("list: %d %s", resp.Code, resp.Body)
	}
	for i, tm := range email {
		if tm.Version != i+1 || tm.Active != (i == 2) {
			t.Errorf("version %d: %+v", i+1, tm)
		}
	}
	if email[0].Body != "v1 {{.Message}}" {
		t.Errorf("version 1 changed: %+v", email[0])
	}

	resp = api.Post(base, map[string]any{"type": "backup_failed", "channel": "email", "subject": "ok", "body": "{{.Broken"})
	if resp.Code != 422 {
		t.Fatalf("bad template: %d %s", resp.Code, resp.Body)
	}
	wantLocation(t, decode[problemJSON](t, resp.Body.Bytes()), "body.body")
	if resp = api.Post(base, map[string]any{"type": "backup_failed", "channel": "sms", "body": "x"}); resp.Code != 422 {
		t.Errorf("bad channel: %d %s", resp.Code, resp.Body)
	}
	if resp = api.Post(base+"/00000000-0000-0000-0000-000000000000/new-version", map[string]any{}); resp.Code != 404 {
		t.Errorf("missing template: %d %s", resp.Code, resp.Body)
	}
}

func TestNotificationSettingsAPI(t *testing.T) {
	e, _ := newEngine(t)
	srv := httptest.NewServer(httpapi.New(e, &httpapi.Options{Logger: quiet()}))
	defer srv.Close()
	c := backupsClient{t: t, url: srv.URL}
	const path = "/api/system/settings/notifications"

	code, b := c.do("GET", path, nil)
	if code != 200 {
		t.Fatalf("get empty: %d %s", code, b)
	}
	hook := map[string]any{"enabled": true, "url": "https://hooks.example.com/dg", "secret": secret}
	code, b = c.do("PUT", path, map[string]any{"webhook": hook})
	if code != 200 || bytes.Contains(b, []byte(secret)) || !bytes.Contains(b, []byte(`"********"`)) {
		t.Fatalf("put: %d %s", code, b)
	}
	code, b = c.do("GET", path, nil)
	if code != 200 || bytes.Contains(b, []byte(secret)) || !bytes.Contains(b, []byte(`"secret":"********"`)) ||
		!bytes.Contains(b, []byte("hooks.example.com")) {
		t.Fatalf("get: %d %s", code, b)
	}
	// Sending the redacted value back keeps the secret.
	hook["secret"] = "********"
	hook["max_attempts"] = 2
	code, b = c.do("PUT", path, map[string]any{"webhook": hook})
	if code != 200 || !bytes.Contains(b, []byte(`"secret":"********"`)) {
		t.Fatalf("put redacted: %d %s", code, b)
	}
	s, err := e.NotificationSettings(context.Background())
	if err != nil || s.Webhook == nil || s.Webhook.Secret != "********" || s.Webhook.MaxAttempts != 2 {
		t.Errorf("stored settings %+v %v", s.Webhook, err)
	}

	code, b = c.do("PUT", path, map[string]any{"webhook": map[string]any{"enabled": true, "url": "not a url", "secret": secret}})
	if code != 422 || bytes.Contains(b, []byte(secret)) || !bytes.Contains(b, []byte("body.webhook.url")) {
		t.Errorf("invalid: %d %s", code, b)
	}
	code, b = c.do("GET", path, nil)
	if code != 200 || !bytes.Contains(b, []byte("hooks.example.com")) {
		t.Errorf("invalid put changed the settings: %d %s", code, b)
	}
}
