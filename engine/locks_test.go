package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// Two processes sharing one PostgreSQL never work on one datasource at once.
func TestDatasourceLockAcrossEngines(t *testing.T) {
	url := testsvc.NewPostgresDatabase(t)
	ctx := t.Context()
	var es [2]*Engine
	for i := range es {
		e, err := newEngine(ctx, Config{DataDir: t.TempDir(), DatabaseURL: url, SecretKey: testKey, Logger: discardLogger})
		mustNoErr(t, "new", err)
		defer e.Close()
		es[i] = e
	}
	unlock, err := es[0].lockDatasource(ctx, "ds-1")
	mustNoErr(t, "first lock", err)

	short, cancel := context.WithTimeout(ctx, 1200*time.Millisecond)
	defer cancel()
	if _, err := es[1].lockDatasource(short, "ds-1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second engine took a held datasource lock: %v", err)
	}
	other, err := es[1].lockDatasource(ctx, "ds-2") // another datasource is free
	mustNoErr(t, "other datasource", err)
	other()

	got := make(chan error, 1)
	go func() {
		u, err := es[1].lockDatasource(ctx, "ds-1")
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(300 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		mustNoErr(t, "lock after release", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting engine never got the released lock")
	}
}
