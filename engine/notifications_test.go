package engine

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/dataguardian/dataguardian/notify"
)

type hookCall struct {
	body []byte
	sig  string
}

// webhookServer is a real HTTP server recording every delivery.
func webhookServer(t *testing.T) (*httptest.Server, chan hookCall) {
	t.Helper()
	calls := make(chan hookCall, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls <- hookCall{body: b, sig: r.Header.Get(notify.SignatureHeader)}
	}))
	t.Cleanup(srv.Close)
	return srv, calls
}

func nextCall(t *testing.T, calls chan hookCall) (hookCall, notify.WebhookPayload) {
	t.Helper()
	select {
	case c := <-calls:
		var p notify.WebhookPayload
		mustNoErr(t, "decode payload", json.Unmarshal(c.body, &p))
		return c, p
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery")
	}
	return hookCall{}, notify.WebhookPayload{}
}

const hookSecret = "s3cr3t-0123456789abcdef"

func TestNotificationSettingsWebhook(t *testing.T) {
	rec := &recNotifier{}
	e := newSQLiteEngine(t, Config{Notifier: rec})
	ctx := t.Context()
	srv, calls := webhookServer(t)
	mustNoErr(t, "set settings", e.SetNotificationSettings(ctx, notify.ChannelSettings{
		Webhook: &notify.WebhookSettings{Enabled: true, URL: srv.URL + "/hook", Secret: hookSecret},
	}))

	// A backup that fails (its database is gone) is notified through the webhook.
	f := newFixture(t, e, BackupJob{})
	mustNoErr(t, "remove database", os.Remove(f.dbPath))
	exec, err := e.RunBackup(ctx, f.job.ID)
	if err == nil {
		t.Fatal("backup of a missing database succeeded")
	}
	c, p := nextCall(t, calls)
	if !notify.VerifySignature(hookSecret, c.body, c.sig) {
		t.Fatalf("bad signature %q", c.sig)
	}
	if p.Type != notify.BackupFailed || p.EntityID != exec.ID {
		t.Fatalf("payload %+v", p.Notification)
	}
	if p.Data["job_name"] != "app nightly" || p.Data["datasource_name"] != "app" || p.Data["execution_id"] != exec.ID || p.Data["error"] == "" {
		t.Fatalf("payload data %v", p.Data)
	}
	if rec.count(notify.BackupFailed) != 1 {
		t.Fatal("Config.Notifier did not get the notification")
	}
	got, err := e.store.ListNotifications(ctx, NotificationFilter{Type: notify.BackupFailed})
	mustNoErr(t, "list notifications", err)
	if len(got) != 1 {
		t.Fatalf("%d in-app records, want 1", len(got))
	}

	// Secrets: redacted when read, sealed at rest, kept when sent back redacted.
	s, err := e.NotificationSettings(ctx)
	mustNoErr(t, "get settings", err)
	if s.Webhook == nil || s.Webhook.Secret != "********" || s.Webhook.URL != srv.URL+"/hook" {
		t.Fatalf("settings %+v", s.Webhook)
	}
	var raw []byte
	var encrypted bool
	mustNoErr(t, "raw setting", e.store.DB(storedb.Key{}).NewRaw("SELECT value, encrypted FROM system_settings WHERE key = ?", NotificationSettingsKey).Scan(ctx, &raw, &encrypted))
	if !encrypted || strings.Contains(string(raw), hookSecret) || strings.Contains(string(raw), "hook") {
		t.Fatalf("stored setting not sealed (encrypted=%v): %s", encrypted, raw)
	}
	s.Webhook.Headers = map[string]string{"X-Team": "ops"}
	mustNoErr(t, "set redacted settings", e.SetNotificationSettings(ctx, s))
	e.notify(ctx, notify.Notification{Type: notify.ConnectionLost, Severity: notify.Critical, Title: "db down"})
	c, p = nextCall(t, calls)
	if !notify.VerifySignature(hookSecret, c.body, c.sig) || p.Type != notify.ConnectionLost {
		t.Fatalf("after a redacted update: signature ok=%v, type %s", notify.VerifySignature(hookSecret, c.body, c.sig), p.Type)
	}

	// Invalid settings are refused and the live ones stay.
	err = e.SetNotificationSettings(ctx, notify.ChannelSettings{Webhook: &notify.WebhookSettings{Enabled: true, URL: "ftp://x", Secret: "short"}})
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, notify.ErrInvalidSettings) {
		t.Fatalf("err = %v, want ErrInvalid and notify.ErrInvalidSettings", err)
	}

	// A new engine on the same store and key loads the channels.
	e2, err := newEngine(ctx, Config{DataDir: e.cfg.DataDir, DatabaseURL: e.cfg.DatabaseURL, SecretKey: nil, Logger: discardLogger})
	mustNoErr(t, "reopen", err)
	defer e2.Close()
	e2.notify(ctx, notify.Notification{Type: notify.ConnectionRestored, Severity: notify.Info, Title: "db back"})
	if c, p = nextCall(t, calls); p.Type != notify.ConnectionRestored || !notify.VerifySignature(hookSecret, c.body, c.sig) {
		t.Fatalf("reopened engine delivered %s", p.Type)
	}
}

func TestTemplateVersions(t *testing.T) {
	e := newSQLiteEngine(t, Config{})
	ctx := t.Context()
	srv, calls := webhookServer(t)
	mustNoErr(t, "set settings", e.SetNotificationSettings(ctx, notify.ChannelSettings{
		Webhook: &notify.WebhookSettings{Enabled: true, URL: srv.URL, Secret: hookSecret},
	}))
	send := func() notify.WebhookPayload {
		e.notify(ctx, notify.Notification{Type: notify.BackupFailed, Severity: notify.Critical, Title: "backup failed",
			Data: map[string]any{"job_name": "nightly"}})
		_, p := nextCall(t, calls)
		return p
	}
	v1, err := e.AddTemplateVersion(ctx, notify.BackupFailed, notify.ChannelWebhook, "one {{.Title}}", "v1 {{.Data.job_name}}")
	mustNoErr(t, "add v1", err)
	if p := send(); v1.Version != 1 || p.Subject != "one backup failed" || p.Text != "v1 nightly" {
		t.Fatalf("v%d rendered %q / %q", v1.Version, p.Subject, p.Text)
	}
	v2, err := e.AddTemplateVersion(ctx, notify.BackupFailed, notify.ChannelWebhook, "two {{.Title}}", "v2 {{.Data.job_name}}")
	mustNoErr(t, "add v2", err)
	if p := send(); v2.Version != 2 || p.Text != "v2 nightly" {
		t.Fatalf("v%d rendered %q", v2.Version, p.Text)
	}
	if _, err := e.AddTemplateVersion(ctx, notify.BackupFailed, notify.ChannelWebhook, "x", "{{.Nope"); !errors.Is(err, ErrInvalid) || !errors.Is(err, notify.ErrTemplate) {
		t.Fatalf("bad template: err = %v", err)
	}
	rows, err := e.Templates(ctx)
	mustNoErr(t, "list templates", err)
	if len(rows) != 2 || rows[0].Version != 1 || rows[0].Body != "v1 {{.Data.job_name}}" || rows[1].Version != 2 {
		t.Fatalf("templates %+v", rows)
	}
	// A reopened engine loads the stored versions and continues the numbering.
	e2, err := newEngine(ctx, Config{DataDir: e.cfg.DataDir, DatabaseURL: e.cfg.DatabaseURL, Logger: discardLogger})
	mustNoErr(t, "reopen", err)
	defer e2.Close()
	v3, err := e2.AddTemplateVersion(ctx, notify.BackupFailed, notify.ChannelWebhook, "three", "v3")
	mustNoErr(t, "add v3", err)
	if v3.Version != 3 {
		t.Fatalf("version %d, want 3", v3.Version)
	}
}

// A channel that never answers does not hold up the caller, and Close
// gives up on it after a bounded wait.
func TestSlowChannelDoesNotBlock(t *testing.T) {
	e := newSQLiteEngine(t, Config{})
	ctx := t.Context()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	mustNoErr(t, "set settings", e.SetNotificationSettings(ctx, notify.ChannelSettings{
		Webhook: &notify.WebhookSettings{Enabled: true, URL: srv.URL, Secret: hookSecret, MaxAttempts: 1},
	}))
	start := time.Now()
	for range 3 {
		e.notify(ctx, notify.Notification{Type: notify.BackupFailed, Severity: notify.Critical, Title: "x"})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("notify blocked for %s", d)
	}
}

// TestNotificationSettingsReachOtherProcesses: settings and templates one
// engine stores reach another engine on the same store at its next refresh
// (Start runs one every 30 s), and a removal turns its channels off.
func TestNotificationSettingsReachOtherProcesses(t *testing.T) {
	ctx := t.Context()
	a := newSQLiteEngine(t, Config{})
	b, err := newEngine(ctx, Config{DataDir: a.cfg.DataDir, DatabaseURL: a.cfg.DatabaseURL, Logger: discardLogger})
	mustNoErr(t, "second engine", err)
	defer b.Close()
	srv, calls := webhookServer(t)

	mustNoErr(t, "set settings on a", a.SetNotificationSettings(ctx, notify.ChannelSettings{
		Webhook: &notify.WebhookSettings{Enabled: true, URL: srv.URL + "/hook", Secret: hookSecret},
	}))
	_, err = a.AddTemplateVersion(ctx, notify.ConnectionLost, notify.ChannelWebhook, "", "caiu: {{.Title}}")
	mustNoErr(t, "template on a", err)
	if m := b.notifs.live.Load(); m != nil && len(*m) > 0 {
		t.Fatal("b has channels before a refresh")
	}

	b.refreshNotifications(ctx)
	b.notify(ctx, notify.Notification{Type: notify.ConnectionLost, Severity: notify.Critical, Title: "db down"})
	c, p := nextCall(t, calls)
	if p.Type != notify.ConnectionLost || !notify.VerifySignature(hookSecret, c.body, c.sig) {
		t.Fatalf("b delivered %s (signature ok %v)", p.Type, notify.VerifySignature(hookSecret, c.body, c.sig))
	}
	if v, ok := b.notifs.templates.Current(notify.ConnectionLost, notify.ChannelWebhook); !ok || v.Version != 1 || v.Body != "caiu: {{.Title}}" {
		t.Errorf("b's template: %+v %v", v, ok)
	}

	// A refresh with nothing new keeps the live channels as they are.
	live := b.notifs.live.Load()
	b.refreshNotifications(ctx)
	if b.notifs.live.Load() != live {
		t.Error("a refresh without changes rebuilt the channels")
	}

	// a disables the webhook: b stops delivering after its refresh.
	mustNoErr(t, "disable on a", a.SetNotificationSettings(ctx, notify.ChannelSettings{}))
	b.refreshNotifications(ctx)
	b.notify(ctx, notify.Notification{Type: notify.ConnectionRestored, Severity: notify.Info, Title: "db back"})
	select {
	case c := <-calls:
		t.Fatalf("b still delivers after the channels were removed: %s", c.body)
	case <-time.After(500 * time.Millisecond):
	}
}
