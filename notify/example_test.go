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
