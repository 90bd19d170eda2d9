package postgres

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/internal/proc"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// pg_restore (and pg_dump, which gets the same environment) gives up on a
// server that accepts and never answers after connect_timeout
// (PGCONNECT_TIMEOUT), long before the context ends.
func TestToolConnectTimeout(t *testing.T) {
	src, err := drivers.ParseDSN("postgres", testsvc.NewPostgresDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	archive, _ := drivertest.Dump(t, New(), src) // pg_restore reads its input before it connects
	c, err := parseSource(drivers.Source{Host: "127.0.0.1", Port: drivertest.SilentServer(t), Database: "x",
		Options: map[string]string{OptSSLMode: "disable", OptConnectTimeout: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = New().runRestore(ctx, c, bytes.NewReader(archive), 90600, false, t.Logf)
	if !errors.Is(err, proc.ErrToolFailed) || !strings.Contains(err.Error(), "timeout") || ctx.Err() != nil {
		t.Fatalf("pg_restore against a silent server: %v (context %v); want the tool's own timeout", err, ctx.Err())
	}
	t.Logf("error: %v", err)
}
