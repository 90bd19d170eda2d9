package notify

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

type failing struct{}

func (failing) Name() string { return "failing" }
func (failing) Notify(context.Context, Notification) error {
	return ErrDelivery
}

func TestMultiDeliversDespiteFailure(t *testing.T) {
	var buf bytes.Buffer
	m := Multi{failing{}, Log{Logger: slog.New(slog.NewTextHandler(&buf, nil))}}
	err := m.Notify(context.Background(), Notification{Type: BackupFailed, Severity: Critical, Title: "backup failed"})
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "failing") {
		t.Fatalf("err = %v, want ErrDelivery naming the channel", err)
	}
	if !strings.Contains(buf.String(), "level=ERROR") || !strings.Contains(buf.String(), "backup_failed") {
		t.Fatalf("log channel did not deliver: %q", buf.String())
	}
}
