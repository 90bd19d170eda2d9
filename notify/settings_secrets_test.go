package notify

import (
	"errors"
	"strings"
	"testing"
)

// TestKeepSecretsBoundToDestination: a redacted secret is kept only while
// its channel sends to the same place; changing the destination without
// sending the secret again names the field, so the stored secret never
// follows a new URL or server.
func TestKeepSecretsBoundToDestination(t *testing.T) {
	const resend = "so the stored secret is not sent to the new address: send it again"
	for _, tc := range []struct {
		name   string
		change func(*ChannelSettings)
		fields []string // the FieldErrors wanted; none: the secrets are kept
	}{
		{"nothing changed", func(*ChannelSettings) {}, nil},
		{"webhook url", func(s *ChannelSettings) { s.Webhook.URL = "https://attacker.example.net/x" },
			[]string{"webhook.secret", "webhook.headers"}},
		{"webhook url path", func(s *ChannelSettings) { s.Webhook.URL = "https://hooks.example.com/y" },
			[]string{"webhook.secret", "webhook.headers"}},
		{"webhook non-destination fields", func(s *ChannelSettings) { s.Webhook.MaxAttempts = 2; s.Webhook.Types = []string{BackupFailed} }, nil},
		{"whatsapp base_url", func(s *ChannelSettings) { s.WhatsApp.BaseURL = "https://evil.example.net" }, []string{"whatsapp.api_key"}},
		{"whatsapp instance", func(s *ChannelSettings) { s.WhatsApp.Instance = "other" }, []string{"whatsapp.api_key"}},
		{"whatsapp numbers", func(s *ChannelSettings) { s.WhatsApp.Numbers = []string{"5511999990002"} }, nil},
		{"smtp host", func(s *ChannelSettings) { s.SMTP.Host = "smtp.attacker.example.net" }, []string{"smtp.password"}},
		{"smtp port", func(s *ChannelSettings) { s.SMTP.Port = 2525 }, []string{"smtp.password"}},
		{"smtp default port written out", func(s *ChannelSettings) { s.SMTP.Port = 587; s.SMTP.TLS = SMTPStartTLS }, nil},
		{"smtp host case", func(s *ChannelSettings) { s.SMTP.Host = "SMTP.Example.com" }, nil},
		{"smtp username", func(s *ChannelSettings) { s.SMTP.Username = "other" }, []string{"smtp.password"}},
		{"smtp tls", func(s *ChannelSettings) { s.SMTP.TLS = SMTPTLS }, []string{"smtp.password"}},
		{"smtp recipients", func(s *ChannelSettings) { s.SMTP.To = []string{"dba@example.com"} }, nil},
		{"every channel", func(s *ChannelSettings) {
			s.SMTP.Host, s.Webhook.URL, s.WhatsApp.BaseURL = "smtp.x.example", "https://x.example/h", "https://x.example"
		}, []string{"smtp.password", "webhook.secret", "webhook.headers", "whatsapp.api_key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stored := fullSettings()
			in := stored.Redacted()
			tc.change(&in)
			got, err := in.KeepSecrets(stored)
			if len(tc.fields) == 0 {
				if err != nil {
					t.Fatalf("KeepSecrets: %v", err)
				}
				if got.SMTP.Password != "smtp-pass-123" || got.Webhook.Secret != testSecret ||
					got.Webhook.Headers["Authorization"] != "Bearer tok-123" || got.WhatsApp.APIKey != testAPIKey {
					t.Fatalf("secrets not kept: %+v %+v %+v", got.SMTP, got.Webhook, got.WhatsApp)
				}
				return
			}
			if !errors.Is(err, ErrInvalidSettings) {
				t.Fatalf("KeepSecrets = %v, want ErrInvalidSettings", err)
			}
			var fields []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *FieldError
				if !errors.As(e, &fe) || !strings.Contains(fe.Message, resend) {
					t.Errorf("error %v is not a FieldError saying to send the secret again", e)
					continue
				}
				fields = append(fields, fe.Field)
			}
			if strings.Join(fields, " ") != strings.Join(tc.fields, " ") {
				t.Errorf("fields %q, want %q", fields, tc.fields)
			}
			for _, secret := range []string{"smtp-pass-123", testSecret, "tok-123", testAPIKey} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
			if tc.name == "webhook url" && !strings.Contains(err.Error(), "webhook.secret: the url changed, "+resend) {
				t.Errorf("message: %v", err)
			}
		})
	}
}

// TestKeepSecretsSentAgain: with the destination changed, secrets sent
// again are accepted, and a secret that was never stored may stay redacted
// (it becomes empty: there is nothing to leak).
func TestKeepSecretsSentAgain(t *testing.T) {
	stored := fullSettings()
	in := stored.Redacted()
	in.Webhook.URL = "https://new.example.com/h"
	in.Webhook.Secret = "a-new-secret-of-32-characters-xx"
	in.Webhook.Headers = map[string]string{"Authorization": "Bearer new", "X-New": "********"}
	in.WhatsApp.BaseURL = "https://evo2.example.com"
	in.WhatsApp.APIKey = "new-api-key"
	in.SMTP.Host = "smtp2.example.com"
	in.SMTP.Password = "new-pass"
	got, err := in.KeepSecrets(stored)
	if err != nil {
		t.Fatal(err)
	}
	if got.Webhook.Secret != "a-new-secret-of-32-characters-xx" || got.Webhook.Headers["Authorization"] != "Bearer new" ||
		got.Webhook.Headers["X-New"] != "" || got.WhatsApp.APIKey != "new-api-key" || got.SMTP.Password != "new-pass" {
		t.Fatalf("KeepSecrets = %+v %+v %+v", got.SMTP, got.Webhook, got.WhatsApp)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("settings sent again: %v", err)
	}
	// A channel set for the first time has nothing stored to keep.
	first := ChannelSettings{Webhook: &WebhookSettings{URL: "https://h.example.com", Secret: "********"}}
	if got, err := first.KeepSecrets(ChannelSettings{}); err != nil || got.Webhook.Secret != "" {
		t.Fatalf("first settings: %+v, %v", got.Webhook, err)
	}
}
