package notify_test

import (
	"context"
	"fmt"

	"github.com/dataguardian/dataguardian/notify"
)

type printer struct{}

func (printer) Name() string { return "printer" }

func (printer) Notify(_ context.Context, n notify.Notification) error {
	fmt.Printf("[%s] %s: %s\n", n.Severity, n.Type, n.Title)
	return nil
}

// A Multi delivers to every channel; here one that prints.
func ExampleMulti() {
	ch := notify.Multi{printer{}}
	_ = ch.Notify(context.Background(), notify.Notification{
		Type:     notify.ConnectionLost,
		Severity: notify.Critical,
		Title:    "Banco Produção unreachable after 3 checks",
	})
	// Output: [critical] connection_lost: Banco Produção unreachable after 3 checks
}

// Templates render a notification per channel; stored versions override the
// built-in Portuguese defaults, the highest version winning.
func ExampleTemplates_Render() {
	n := notify.Notification{
		Type:     notify.BackupCompleted,
		Severity: notify.Info,
		Title:    "Backup do job Produção",
		Data:     map[string]any{"job_name": "Produção", "size_bytes": 1536, "duration_seconds": 90},
	}
	t := notify.NewTemplates()
	subject, body, _ := t.Render(n, notify.ChannelWebhook)
	fmt.Println(subject)
	fmt.Println(body)

	_ = t.Set(notify.BackupCompleted, notify.ChannelWebhook, 1,
		`{{upper .Data.job_name}} ok`, `{{bytes .Data.size_bytes}} em {{duration .Data.duration_seconds}}`)
	subject, body, _ = t.Render(n, notify.ChannelWebhook)
	fmt.Println(subject)
	fmt.Println(body)
	// Output:
	// [DataGuardian] Backup concluído: Produção
	// Backup concluído: Backup do job Produção
	// PRODUÇÃO ok
	// 1.5 KiB em 1m30s
}

// A webhook receiver checks the signature over the exact body it read.
func ExampleVerifySignature() {
	secret := "4f9c2e7a1b3d5f60"
	body := []byte(`{"event":{"id":"evt_1"},"type":"backup_failed"}`)
	header := notify.Sign(secret, body) // what DataGuardian sends in X-DataGuardian-Signature

	fmt.Println(notify.VerifySignature(secret, body, header))
	fmt.Println(notify.VerifySignature(secret, []byte(`{"type":"tampered"}`), header))
	fmt.Println(notify.VerifySignature("wrong-secret", body, header))
	// Output:
	// true
	// false
	// false
}
