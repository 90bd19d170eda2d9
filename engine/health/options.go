package health

import (
	"fmt"
	"time"

	"github.com/dataguardian/dataguardian/engine/store"
)

// Defaults applied by Options.WithDefaults.
const (
	DefaultInterval            = 5 * time.Minute
	DefaultTimeout             = 5 * time.Second
	DefaultConcurrency         = 32
	DefaultSlowThreshold       = time.Second
	DefaultFailuresForCritical = 3
	DefaultRetention           = 7 * 24 * time.Hour
)

// Options configure health checks. The zero value means the documented
// defaults. The engine calls them HealthOptions (engine.Config.Health),
// which is the name their validation errors use.
type Options struct {
	// Interval between the starts of two cycles of a Worker; 0 means
	// DefaultInterval (5 min).
	Interval time.Duration
	// Timeout bounds one check (connect, SELECT 1, details); 0 means
	// DefaultTimeout (5 s). A check that has no answer by then is
	// recorded as "timeout".
	Timeout time.Duration
	// Concurrency bounds how many checks of a cycle run at once; 0 means
	// DefaultConcurrency (32). A cycle lasts about
	// ceil(silent datasources / Concurrency) × Timeout: to keep a cycle
	// within 2 × Timeout when N datasources may stop answering at once,
	// set it to at least N (a waiting check costs a goroutine and a socket).
	Concurrency int
	// SlowThreshold: a successful check that took longer (the whole check,
	// as the service measured it) makes the datasource "warning"; 0 means
	// DefaultSlowThreshold (1 s).
	SlowThreshold time.Duration
	// FailuresForCritical is how many consecutive failed checks make a
	// datasource "critical" and send connection_lost; 0 means
	// DefaultFailuresForCritical (3).
	FailuresForCritical int
	// Retention: health checks older than this are deleted by each cycle;
	// 0 means DefaultRetention (7 days), a negative value keeps them
	// forever.
	Retention time.Duration
}

// WithDefaults returns o with every zero field set to its documented default.
func (o Options) WithDefaults() Options {
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.SlowThreshold == 0 {
		o.SlowThreshold = DefaultSlowThreshold
	}
	if o.FailuresForCritical == 0 {
		o.FailuresForCritical = DefaultFailuresForCritical
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	return o
}

// Validate reports the first invalid field of o (negative durations and
// counts; a negative Retention is valid) as an error matching
// store.ErrInvalid. A zero field is valid: it means the default.
func (o Options) Validate() error {
	bad := func(field string, v any, help string) error {
		return fmt.Errorf("%w: HealthOptions.%s %v: %s", store.ErrInvalid, field, v, help)
	}
	switch {
	case o.Interval < 0:
		return bad("Interval", o.Interval, "use a positive duration (0 means 5m)")
	case o.Timeout < 0:
		return bad("Timeout", o.Timeout, "use a positive duration (0 means 5s)")
	case o.Concurrency < 0:
		return bad("Concurrency", o.Concurrency, "use a positive number of checks at once (0 means 32)")
	case o.SlowThreshold < 0:
		return bad("SlowThreshold", o.SlowThreshold, "use a positive duration (0 means 1s)")
	case o.FailuresForCritical < 0:
		return bad("FailuresForCritical", o.FailuresForCritical, "use a positive number of consecutive failures (0 means 3)")
	}
	return nil
}
