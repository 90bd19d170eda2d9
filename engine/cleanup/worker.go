package cleanup

import (
	"context"
	"sync"
	"time"
)

// Worker runs a Cleaner's Pass every Interval.
type Worker struct {
	c    *Cleaner
	opts Options

	mu   sync.Mutex
	last Report
	runs int
}

// NewWorker returns a Worker for c; zero opts fields take the Options
// defaults.
func NewWorker(c *Cleaner, opts Options) *Worker {
	return &Worker{c: c, opts: opts.WithDefaults()}
}

// Run cleans up at once and then every Interval until ctx is done; it
// returns nil then. A failing pass is logged and retried at the next tick.
func (w *Worker) Run(ctx context.Context) error {
	log := w.c.log.WithGroup("cleanup")
	tick := time.NewTicker(w.opts.Interval)
	defer tick.Stop()
	for {
		rep, err := w.c.Pass(ctx, w.opts)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Error("cleanup pass", "err", err)
		}
		w.mu.Lock()
		w.last, w.runs = rep, w.runs+1
		w.mu.Unlock()
		log.Debug("cleanup pass", "jobs", rep.Jobs, "deleted", len(rep.Deleted), "tasks_pruned", rep.TasksPruned, "incomplete", len(rep.Incomplete),
			"missing", len(rep.Missing))
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Last returns the report of the last pass and how many passes ran.
func (w *Worker) Last() (Report, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.runs
}
