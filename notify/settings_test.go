package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func fullSettings() ChannelSettings {
	return ChannelSettings{
		SMTP: &SMTPSettings{Enabled: true, Host: "smtp.example.com", Username: "dg", Password: "smtp-pass-123",
			From: "DataGuardian <dg@example.com>", To: []string{"ops@example.com"}},
		Webhook: &WebhookSettings{Enabled: true, URL: "https://hooks.example.com/x", Secret: testSecret,
			Headers: map[string]string{"Authorization": "Bearer tok-123"}},
		WhatsApp: &WhatsAppSettings{Enabled: true, BaseURL: "https://evo.example.com", Instance: "dg",
			APIKey: testAPIKey, Numbers: []string{"+55 11 99999-0001"}},
	}
}

func TestSettingsRedacted(t *testing.T) {
	s := fullSettings()
	r := s.Redacted()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"smtp-pass-123", testSecret, "tok-123", testAPIKey} {
		if strings.Contains(string(b), secret) {
			t.Errorf("redacted JSON shows %q: %s", secret, b)
		}
	}
	if r.SMTP.Password != "********" || r.Webhook.Secret != "********" || r.Webhook.Headers["Authorization"] != "********" || r.WhatsApp.APIKey != "********" {
		t.Errorf("redacted = %s", b)
	}
	if r.SMTP.Host != "smtp.example.com" || r.WhatsApp.Numbers[0] != "+55 11 99999-0001" {
		t.Errorf("non-secrets changed: %s", b)
	}
	// The original is untouched.
	if s.SMTP.Password != "smtp-pass-123" || s.Webhook.Headers["Authorization"] != "Bearer tok-123" {
		t.Fatal("Redacted changed its receiver")
	}
	// An empty secret stays empty (the UI shows "not set").
	if (ChannelSettings{SMTP: &SMTPSettings{}}).Redacted().SMTP.Password != "" {
		t.Error("empty password redacted")
	}
	// A client sending the redacted settings back keeps the old secrets.
	back := r.Redacted()
	back.SMTP.From = "Backups <backups@example.com>"
	back.Webhook.Headers["X-Extra"] = "new"
	kept, err := back.KeepSecrets(s)
	if err != nil || kept.SMTP.Password != "smtp-pass-123" || kept.Webhook.Secret != testSecret || kept.Webhook.Headers["Authorization"] != "Bearer tok-123" ||
		kept.Webhook.Headers["X-Extra"] != "new" || kept.WhatsApp.APIKey != testAPIKey || kept.SMTP.From != "Backups <backups@example.com>" {
		t.Fatalf("KeepSecrets = %+v %+v %+v, %v", kept.SMTP, kept.Webhook, kept.WhatsApp, err)
	}
	// With nothing to keep, the placeholder becomes empty rather than a
	// password of eight asterisks.
	if got, err := (ChannelSettings{SMTP: &SMTPSettings{Password: "********"}}).KeepSecrets(ChannelSettings{}); err != nil || got.SMTP.Password != "" {
		t.Fatalf("placeholder kept: %q, %v", got.SMTP.Password, err)
	}
}

func TestSettingsValidateNamesFieldAndFix(t *testing.T) {
	s := ChannelSettings{
		SMTP:     &SMTPSettings{Enabled: true, Port: 70000, TLS: "ssl", Username: "dg", From: "nope", To: []string{"x"}},
		Webhook:  &WebhookSettings{Enabled: true, URL: "ftp://x", Secret: "short", Headers: map[string]string{"X-DataGuardian-Signature": "x"}},
		WhatsApp: &WhatsAppSettings{Enabled: true, BaseURL: "evo", Numbers: []string{"abc"}, Filter: Filter{MinSeverity: "urgent"}},
	}
	err := s.Validate()
	if !errors.Is(err, ErrInvalidSettings) {
		t.Fatalf("err = %v", err)
	}
	for _, field := range []string{"smtp.host", "smtp.port", "smtp.tls", "smtp.password", "smtp.from", "smtp.to[0]",
		"webhook.url", "webhook.secret", "webhook.headers", "whatsapp.base_url", "whatsapp.instance", "whatsapp.api_key",
		"whatsapp.numbers[0]", "whatsapp.min_severity"} {
		if !strings.Contains(err.Error(), field+": ") {
			t.Errorf("no error for %s in:\n%v", field, err)
		}
	}
	if !strings.Contains(err.Error(), "openssl rand -hex 32") {
		t.Errorf("webhook.secret error does not say how to fix it")
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field == "" {
		t.Fatalf("no FieldError in %v", err)
	}
	// Disabled channels are not validated, and a plaintext password to a
	// remote host is refused.
	if err := (ChannelSettings{SMTP: &SMTPSettings{Port: -1}}).Validate(); err != nil {
		t.Errorf("disabled channel validated: %v", err)
	}
	c := fullSettings()
	c.SMTP.TLS = SMTPNone
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "clear text") {
		t.Errorf("plaintext password accepted: %v", err)
	}
	if err := fullSettings().Validate(); err != nil {
		t.Fatalf("valid settings refused: %v", err)
	}
}

func TestSettingsBuildDeliversAndFilters(t *testing.T) {
	ms := startMailServer(t, mailServerOptions{})
	hook, hookReqs := hookServer(t, func(int, http.ResponseWriter) {})
	evo, evoCalls := evolutionServer(t, nil)
	s := ChannelSettings{
		SMTP:     &SMTPSettings{Enabled: true, Host: ms.Host, Port: ms.Port, TLS: SMTPNone, From: "dg@example.com", To: []string{"ops@example.com"}},
		Webhook:  &WebhookSettings{Enabled: true, URL: hook.URL + "/hook/tok3n", Secret: testSecret, Filter: Filter{Types: []string{BackupFailed}}},
		WhatsApp: &WhatsAppSettings{Enabled: true, BaseURL: evo.URL, Instance: "dg", APIKey: testAPIKey, Numbers: []string{"5511999990001"}, Filter: Filter{MinSeverity: Critical}},
	}
	m, err := s.Build(NewTemplates())
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m[0].Name() != "smtp" || m[1].Name() != "webhook" || m[2].Name() != "whatsapp" {
		t.Fatalf("built %v", m)
	}
	if err := m.Notify(context.Background(), backupCompleted()); err != nil { // info, backup_completed
		t.Fatal(err)
	}
	if err := m.Notify(context.Background(), Notification{Type: BackupFailed, Severity: Critical, Title: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := len(ms.messages()); got != 2 {
		t.Errorf("smtp got %d, want 2", got)
	}
	if got := len(hookReqs()); got != 1 {
		t.Errorf("webhook got %d, want only the backup_failed", got)
	}
	if got := len(evoCalls()); got != 1 {
		t.Errorf("whatsapp got %d, want only the critical one", got)
	}
	if _, err := (ChannelSettings{Webhook: &WebhookSettings{Enabled: true}}).Build(nil); !errors.Is(err, ErrInvalidSettings) {
		t.Errorf("Build of invalid settings: %v", err)
	}
	if m, err := (ChannelSettings{}).Build(nil); err != nil || len(m) != 0 {
		t.Errorf("empty settings: %v %v", m, err)
	}
}

func TestMultiWithRealChannelsOneFailing(t *testing.T) {
	ms := startMailServer(t, mailServerOptions{})
	hook, hookReqs := hookServer(t, func(int, http.ResponseWriter) {})
	broken, _ := hookServer(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusBadRequest) })
	m := Multi{
		&Webhook{URL: broken.URL + "/hook/tok3n", Secret: testSecret},
		&SMTP{Host: ms.Host, Port: ms.Port, TLS: SMTPNone, From: "dg@example.com", To: []string{"ops@example.com"}},
		&Webhook{URL: hook.URL + "/hook/tok3n", Secret: testSecret},
	}
	err := m.Notify(context.Background(), backupCompleted())
	if !errors.Is(err, ErrDelivery) || !strings.HasPrefix(err.Error(), "webhook: ") || !strings.Contains(err.Error(), "400") {
		t.Fatalf("err = %v", err)
	}
	if len(ms.messages()) != 1 || len(hookReqs()) != 1 {
		t.Fatal("a failing channel kept the others from delivering")
	}
}
