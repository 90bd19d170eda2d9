package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

var allChannels = []string{ChannelEmail, ChannelWhatsApp, ChannelWebhook}

func TestDefaultTemplatesEveryTypeAndChannel(t *testing.T) {
	headings := map[string]string{
		BackupCompleted: "Backup concluído", BackupFailed: "Falha no backup",
		RestoreCompleted: "Restore concluído", RestoreFailed: "Falha no restore",
		ConnectionLost: "Conexão perdida", ConnectionRestored: "Conexão restabelecida",
	}
	for _, typ := range DefaultTypes() {
		for _, ch := range allChannels {
			for _, data := range []map[string]any{nil, {}, sampleNotification(typ).Data} {
				n := Notification{Type: typ, Severity: Warning, Title: "T", Message: "M", Data: data, CreatedAt: time.Now()}
				subject, body, err := NewTemplates().Render(n, ch)
				if err != nil {
					t.Fatalf("%s/%s data=%v: %v", typ, ch, data, err)
				}
				if !strings.Contains(subject, headings[typ]) || !strings.Contains(body, headings[typ]) || !strings.Contains(body, "T") {
					t.Errorf("%s/%s: subject %q body %q", typ, ch, subject, body)
				}
				if strings.ContainsAny(subject, "\r\n") || strings.Contains(body, "<no value>") {
					t.Errorf("%s/%s: subject %q body %q", typ, ch, subject, body)
				}
			}
			if v, ok := NewTemplates().Current(typ, ch); !ok || v.Version != 0 || v.Type != typ || v.Channel != ch {
				t.Errorf("Current(%s, %s) = %+v, %v", typ, ch, v, ok)
			}
		}
	}
	// Any other type gets a generic template.
	subject, body, err := (*Templates)(nil).Render(Notification{Type: "storage_full", Title: "Disco cheio", Message: "/backups 99%"}, ChannelEmail)
	if err != nil || subject != "[DataGuardian] Disco cheio" || !strings.Contains(body, "/backups 99%") {
		t.Errorf("generic: %q %q %v", subject, body, err)
	}
}

func TestTemplatesVersioning(t *testing.T) {
	tm := NewTemplates()
	n := Notification{Type: BackupFailed, Title: "job1", Data: map[string]any{"error": "timeout"}}
	if err := tm.Set(BackupFailed, ChannelEmail, 1, "v1 {{.Title}}", "b1"); err != nil {
		t.Fatal(err)
	}
	if err := tm.Set(BackupFailed, ChannelEmail, 3, "v3 {{.Title}}", "b3 {{.Data.error}}"); err != nil {
		t.Fatal(err)
	}
	if err := tm.Set(BackupFailed, ChannelEmail, 2, "v2", "b2"); err != nil {
		t.Fatal(err)
	}
	subject, body, err := tm.Render(n, ChannelEmail)
	if err != nil || subject != "v3 job1" || body != "b3 timeout" {
		t.Fatalf("render = %q %q %v, want the highest version", subject, body, err)
	}
	// The same content again is a no-op; different content is refused.
	if err := tm.Set(BackupFailed, ChannelEmail, 1, "v1 {{.Title}}", "b1"); err != nil {
		t.Fatalf("idempotent Set: %v", err)
	}
	err = tm.Set(BackupFailed, ChannelEmail, 1, "changed", "b1")
	if !errors.Is(err, ErrTemplateVersionExists) || !strings.Contains(err.Error(), "version 4") {
		t.Fatalf("rewrite of v1: %v", err)
	}
	if vs := tm.Versions(BackupFailed, ChannelEmail); len(vs) != 3 || vs[0].Version != 1 || vs[0].Subject != "v1 {{.Title}}" || vs[2].Version != 3 {
		t.Fatalf("versions = %+v", vs)
	}
	if got := tm.NextVersion(BackupFailed, ChannelEmail); got != 4 {
		t.Fatalf("NextVersion = %d", got)
	}
	if got := tm.NextVersion(BackupFailed, ChannelWhatsApp); got != 1 {
		t.Fatalf("NextVersion (none) = %d", got)
	}
	// Other channels and types keep their defaults.
	if s, _, _ := tm.Render(n, ChannelWhatsApp); !strings.Contains(s, "Falha no backup") {
		t.Errorf("whatsapp subject %q", s)
	}
	for _, bad := range []struct {
		typ, ch string
		v       int
	}{{BackupFailed, ChannelEmail, 0}, {BackupFailed, "sms", 1}, {"Bad Type", ChannelEmail, 1}, {"", ChannelEmail, 1}} {
		if err := tm.Set(bad.typ, bad.ch, bad.v, "s", "b"); !errors.Is(err, ErrTemplate) {
			t.Errorf("Set(%q, %q, %d) = %v", bad.typ, bad.ch, bad.v, err)
		}
	}
	if _, _, err := tm.Render(n, "sms"); !errors.Is(err, ErrTemplate) {
		t.Errorf("render for unknown channel: %v", err)
	}
}

func TestTemplatesLoad(t *testing.T) {
	tm := NewTemplates()
	vs := []TemplateVersion{
		{Type: BackupCompleted, Channel: ChannelWebhook, Version: 1, Subject: "a", Body: "A"},
		{Type: BackupCompleted, Channel: ChannelWebhook, Version: 2, Subject: "b", Body: "B {{.Title}}"},
	}
	if err := tm.Load(vs); err != nil {
		t.Fatal(err)
	}
	if err := tm.Load(vs); err != nil {
		t.Fatalf("reloading the same versions: %v", err)
	}
	if v, _ := tm.Current(BackupCompleted, ChannelWebhook); v != vs[1] {
		t.Fatalf("current = %+v", v)
	}
	vs[0].Body = "tampered"
	if err := tm.Load(vs); !errors.Is(err, ErrTemplateVersionExists) {
		t.Fatalf("load of a changed version: %v", err)
	}
}

func TestTemplatesRefuseBadTemplates(t *testing.T) {
	tm := NewTemplates()
	for name, tc := range map[string][2]string{
		"unclosed action": {"{{.Title", "b"},
		"unknown func":    {"{{shout .Title}}", "b"},
		"unknown field":   {"s", "{{.Nome}}"},
		"bad func arg":    {"s", "{{bytes .Title}}"},
		"empty body":      {"s", "   "},
	} {
		if err := tm.Set(BackupCompleted, ChannelEmail, 1, tc[0], tc[1]); !errors.Is(err, ErrTemplate) {
			t.Errorf("%s: Set = %v, want ErrTemplate", name, err)
		}
	}
	if len(tm.Versions(BackupCompleted, ChannelEmail)) != 0 {
		t.Fatal("a refused template was stored")
	}
}

// TestTemplateWithoutSubject: a template stored without a subject (webhook
// and WhatsApp need none) renders the default subject.
func TestTemplateWithoutSubject(t *testing.T) {
	tm := NewTemplates()
	if err := tm.Set(BackupFailed, ChannelWhatsApp, 1, "", "falhou: {{.Message}}"); err != nil {
		t.Fatal(err)
	}
	subject, body, err := tm.Render(Notification{Type: BackupFailed, Title: "Backup falhou", Message: "disco cheio"}, ChannelWhatsApp)
	if err != nil || subject != "[DataGuardian] Backup falhou" || body != "falhou: disco cheio" {
		t.Errorf("render: %q %q %v", subject, body, err)
	}
}

func TestTemplatesMissingKeyIsAnError(t *testing.T) {
	tm := NewTemplates()
	if err := tm.Set(BackupFailed, ChannelWebhook, 1, "s", "job {{.Data.job_name}}"); err != nil {
		t.Fatal(err)
	}
	_, _, err := tm.Render(Notification{Type: BackupFailed, Data: map[string]any{}}, ChannelWebhook)
	if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), "job_name") {
		t.Fatalf("err = %v, want a missing-key error", err)
	}
	// A channel falls back to the default, delivers, and reports the
	// template error (not a delivery error).
	srv, reqs := hookServer(t, func(int, http.ResponseWriter) {})
	w := &Webhook{URL: srv.URL + "/hook/tok3n", Secret: testSecret, Templates: tm}
	err = w.Notify(context.Background(), Notification{Type: BackupFailed, Title: "T"})
	if !errors.Is(err, ErrTemplate) || errors.Is(err, ErrDelivery) {
		t.Fatalf("err = %v, want ErrTemplate only", err)
	}
	var p WebhookPayload
	if r := reqs(); len(r) != 1 || json.Unmarshal(r[0].Body, &p) != nil || !strings.HasPrefix(p.Text, "Falha no backup: T") {
		t.Fatalf("delivered %+v", p)
	}
}

func TestTemplateFuncs(t *testing.T) {
	for in, want := range map[any]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", int64(5 << 30): "5 GiB", float64(1 << 20): "1 MiB", "2048": "2 KiB", nil: ""} {
		if got, err := humanBytes(in); err != nil || got != want {
			t.Errorf("bytes(%v) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := humanBytes(struct{}{}); err == nil {
		t.Error("bytes(struct) did not fail")
	}
	for in, want := range map[any]string{90: "1m30s", 2.5: "3s", 90 * time.Minute: "1h30m0s", "45s": "45s", "12": "12s", 1500 * time.Millisecond: "2s", 250 * time.Millisecond: "250ms", nil: ""} {
		if got, err := humanDuration(in); err != nil || got != want {
			t.Errorf("duration(%v) = %q, %v; want %q", in, got, err, want)
		}
	}
	tm := NewTemplates()
	if err := tm.Set(BackupCompleted, ChannelEmail, 1, `{{upper .Title}} {{lower "ABC"}}`, `{{default "sem job" (index .Data "job_name")}}`); err != nil {
		t.Fatal(err)
	}
	s, b, err := tm.Render(Notification{Type: BackupCompleted, Title: "ação"}, ChannelEmail)
	if err != nil || s != "AÇÃO abc" || b != "sem job" {
		t.Fatalf("render = %q %q %v", s, b, err)
	}
}

func TestTemplatesConcurrentUse(t *testing.T) {
	tm := NewTemplates()
	var wg sync.WaitGroup
	for i := 1; i <= 20; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); _ = tm.Set(BackupCompleted, ChannelEmail, i, "s{{.Title}}", "b") }()
		go func() {
			defer wg.Done()
			if _, _, err := tm.Render(Notification{Type: BackupCompleted, Title: "x"}, ChannelEmail); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if v, _ := tm.Current(BackupCompleted, ChannelEmail); v.Version != 20 {
		t.Fatalf("current version %d", v.Version)
	}
}
