package mysql

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/internal/proc"
)

// The client of restores gives up on a server that accepts and never
// answers after connect_timeout (connect-timeout in its option file), long
// before the context ends.
func TestClientConnectTimeout(t *testing.T) {
	d := New()
	tl, err := d.findTool(t.Context(), "mariadb", "mysql")
	if err != nil {
		t.Skipf("no client: %v", err)
	}
	c, err := checkSource(drivers.Source{Host: "127.0.0.1", Port: drivertest.SilentServer(t), Database: "x", Username: "root",
		Options: map[string]string{OptionConnectTimeout: "1"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = d.runClient(ctx, c, tl, strings.NewReader("SELECT 1;\n"), t.Logf)
	if !errors.Is(err, proc.ErrToolFailed) || ctx.Err() != nil {
		t.Fatalf("client against a silent server: %v (context %v); want the tool's own timeout", err, ctx.Err())
	}
	t.Logf("error: %v", err)
}
