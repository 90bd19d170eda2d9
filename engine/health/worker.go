package health

import (
	"context"
	"sync"
	"time"
)

// Worker runs a health cycle (Service.RunCycle) every Interval. It is safe
// for concurrent use.
type Worker struct {
	s    *Service
	opts Options

	mu     sync.Mutex
	last   CycleReport
	cycles int
}

// NewWorker returns a worker checking s's datasources and storages with
// opts (zero fields mean the defaults).
func NewWorker(s *Service, opts Options) *Worker {
	return &Worker{s: s, opts: opts.WithDefaults()}
}

// Run runs a cycle at once and then one every Interval (a cycle longer than
// Interval delays the next; cycles never overlap) until ctx ends; then it
// stops the cycle under way and returns nil once every goroutine it started
// has ended. It returns an error only for invalid options.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.opts.Validate(); err != nil {
		return err
	}
	log := w.s.log.WithGroup("health")
	tick := time.NewTicker(w.opts.Interval)
	defer tick.Stop()
	for {
		rep, err := w.s.RunCycle(ctx, w.opts)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Error("health cycle", "err", err)
		} else {
			w.mu.Lock()
			w.last, w.cycles = rep, w.cycles+1
			w.mu.Unlock()
			log.Debug("health cycle", "datasources", rep.Datasources, "checked", rep.Checked,
				"duration", rep.Duration, "checks", rep.Checks, "skipped", rep.Skipped)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Last returns the report of the last completed cycle and how many cycles
// have completed (0: none yet).
func (w *Worker) Last() (CycleReport, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.cycles
}
