package engine_test

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/defaults"
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

// firstHangs is the files driver, except that its first dump waits until
// its run is cancelled (the lost lease cancels it): the test does not bet
// on a heartbeat coming before a dump ends.
type firstHangs struct {
	*files.Driver
	dumps *atomic.Int32
}

func (d firstHangs) Dump(ctx context.Context, src drivers.Source, w io.Writer, o *drivers.DumpOptions) (drivers.Metadata, error) {
	if d.dumps.Add(1) == 1 {
		<-ctx.Done()
		return drivers.Metadata{}, ctx.Err()
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
	dumps := &atomic.Int32{}
	reg.Register(firstHangs{files.New(), dumps})
	// ShutdownTimeout bounds the end of a failing test, whose first dump
	// may still hang.
	e, err := engine.New(ctx, engine.Config{DataDir: t.TempDir(), DatabaseURL: url, SecretKey: mpKey, Logger: mpDiscard, Drivers: reg, Queue: q,
		StorageOpeners: defaults.StorageOpeners(),
		Worker:         engine.WorkerOptions{Poll: 50 * time.Millisecond, Lease: 600 * time.Millisecond, ShutdownTimeout: time.Second},
		Health:         engine.HealthOptions{Interval: time.Hour}})
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
	// The first heartbeat loses the lease; the task is recovered once the
	// lease expires and runs again at once: wait for its outcome.
	mpWait(t, "the backup to finish", 60*time.Second, func() bool {
		got, err := e.Store().GetExecution(ctx, x.ID)
		mpMust(t, "get execution", err)
		return got.Status.Terminal()
	})
	stop()
	<-done
	x, _ = e.Store().GetExecution(ctx, x.ID)
	st, _ := q.Stats(ctx)
	logs, _ := e.ExecutionLogs(ctx, x.ID)
	for _, l := range logs {
		t.Logf("log: %s", l.Message)
	}
	t.Logf("execution %s: %s (%s); queue %+v", x.ID, x.Status, x.ErrorMessage, st)
	if x.Status != engine.ExecutionCompleted || dumps.Load() != 2 || x.Attempt != 2 {
		t.Errorf("execution %s at attempt %d after %d dumps; want completed by the second, at attempt 2", x.Status, x.Attempt, dumps.Load())
	}
}
