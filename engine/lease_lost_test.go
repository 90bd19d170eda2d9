package engine_test

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/files"
	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// flakyExtend is the StoreQueue, except that its first Extend reports the
// lease lost, as the StoreQueue does when a heartbeat comes late (a stall
// longer than 2/3 of the lease).
type flakyExtend struct {
	*engine.StoreQueue
	failed atomic.Bool
}

func (q *flakyExtend) Extend(ctx context.Context, id, owner string, lease time.Duration) error {
	if q.failed.CompareAndSwap(false, true) {
		return engine.ErrLeaseLost
	}
	return q.StoreQueue.Extend(ctx, id, owner, lease)
}

type slowFiles struct{ *files.Driver }

func (d slowFiles) Dump(ctx context.Context, src drivers.Source, w io.Writer, o *drivers.DumpOptions) (drivers.Metadata, error) {
	select {
	case <-ctx.Done():
		return drivers.Metadata{}, ctx.Err()
	case <-time.After(time.Second):
	}
	return d.Driver.Dump(ctx, src, w, o)
}

func TestLeaseLostLeavesTheRunToTheNextOwner(t *testing.T) {
	ctx := t.Context()
	url := testsvc.NewPostgresDatabase(t)
	store, err := engine.OpenStore(ctx, url)
	mpMust(t, "store", err)
	defer store.Close()
	q := &flakyExtend{StoreQueue: engine.NewStoreQueue(store, &engine.QueueOptions{Backoff: func(int) time.Duration { return 0 }})}
	reg := &drivers.Registry{}
	reg.Register(slowFiles{files.New()})
	e, err := engine.New(ctx, engine.Config{DataDir: t.TempDir(), DatabaseURL: url, SecretKey: mpKey, Logger: mpDiscard, Drivers: reg, Queue: q,
		Worker: engine.WorkerOptions{Poll: 50 * time.Millisecond, Lease: 600 * time.Millisecond}, Health: engine.HealthOptions{Interval: time.Hour}})
	mpMust(t, "new", err)
	defer e.Close()
	loc := &engine.StorageLocation{Name: "d", Type: "local", Config: map[string]string{"path": t.TempDir()}}
	mpMust(t, "loc", e.CreateStorageLocation(ctx, loc))
	ds := &engine.Datasource{Name: "f", Type: "files", Path: t.TempDir()}
	mpMust(t, "ds", e.CreateDatasource(ctx, ds, ""))
	job := &engine.BackupJob{Name: "j", DatasourceID: ds.ID, StorageLocationIDs: []string{loc.ID}}
	mpMust(t, "job", e.CreateBackupJob(ctx, job))

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- e.Start(runCtx) }()
	x, err := e.EnqueueBackup(ctx, q, job.ID)
	mpMust(t, "enqueue", err)
	time.Sleep(5 * time.Second) // lease lost at 200 ms; recovered at ~600 ms; retried at once
	stop()
	<-done
	x, _ = e.Store().GetExecution(ctx, x.ID)
	st, _ := q.Stats(ctx)
	logs, _ := e.ExecutionLogs(ctx, x.ID)
	for _, l := range logs {
		t.Logf("log: %s", l.Message)
	}
	t.Logf("execution %s: %s (%s); queue %+v", x.ID, x.Status, x.ErrorMessage, st)
	if x.Status != engine.ExecutionCompleted {
		t.Errorf("the run was lost: a late heartbeat left the execution %s and the retry did not run it", x.Status)
	}
}
