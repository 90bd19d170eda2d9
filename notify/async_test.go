package notify_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/notify"
)

// blocking is a Notifier that waits for its context, counting calls and
// cancellations.
type blocking struct{ calls, cancelled atomic.Int32 }

func (*blocking) Name() string { return "blocking" }

func (b *blocking) Notify(ctx context.Context, _ notify.Notification) error {
	b.calls.Add(1)
	<-ctx.Done()
	b.cancelled.Add(1)
	return ctx.Err()
}

// Async returns at once, runs at most MaxPending deliveries (dropping the
// rest), and Close cancels the deliveries still running after CloseWait.
func TestAsyncBoundsAndClose(t *testing.T) {
	a := notify.NewAsync(notify.AsyncOptions{MaxPending: 2, CloseWait: 50 * time.Millisecond, Timeout: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b := &blocking{}
	start := time.Now()
	for range 5 {
		a.Deliver(b, notify.Notification{Type: "backup_failed"})
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Deliver blocked the caller for %s", d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	a.Close()
	if got := b.calls.Load(); got != 2 {
		t.Fatalf("%d deliveries ran; want 2 (MaxPending), the rest dropped", got)
	}
	if got := b.cancelled.Load(); got != 2 {
		t.Fatalf("%d deliveries cancelled by Close; want 2", got)
	}
	a.Deliver(b, notify.Notification{Type: "backup_failed"})
	if got := b.calls.Load(); got != 2 {
		t.Fatal("a delivery ran after Close")
	}
}
