package engine

import (
	"context"

	"github.com/dataguardian/dataguardian/engine/health"
)

// newHealth returns the health service of e (package health), which checks
// through e's drivers, Source, storage openers, notifications and events.
func (e *Engine) newHealth() *health.Service {
	return health.New(e.store, e.cfg.Health, health.Deps{Drivers: e.cfg.Drivers, Source: e.Source,
		OpenStorage: e.openStorage, Notify: e.notify, Publish: e.publishDatasourceStatus, Now: e.now, Log: e.log})
}

// publishDatasourceStatus publishes c as a datasource:status-changed event.
func (e *Engine) publishDatasourceStatus(c health.StatusChange) {
	e.events.Publish(Event{Type: EventDatasourceStatus, EntityID: c.DatasourceID, Status: string(c.Status), At: c.At,
		Data: map[string]any{"previous_status": string(c.Previous), "health_status": string(c.HealthStatus),
			"consecutive_failures": c.ConsecutiveFailures, "name": c.Name}})
}

// CheckDatasource checks the datasource id now with Config.Health and
// records the result; see health.Service.CheckDatasource.
func (e *Engine) CheckDatasource(ctx context.Context, id string) (*HealthCheck, error) {
	return e.health.CheckDatasource(ctx, id)
}

// RunHealthCycle checks every enabled datasource and storage location once
// with opts; see health.Service.RunCycle.
func (e *Engine) RunHealthCycle(ctx context.Context, opts HealthOptions) (HealthCycleReport, error) {
	return e.health.RunCycle(ctx, opts)
}

// CheckStorages checks every enabled storage location now; see
// health.Service.CheckStorages.
func (e *Engine) CheckStorages(ctx context.Context) ([]StorageHealth, error) {
	return e.health.CheckStorages(ctx)
}

// LastStorageHealth returns the recorded storage checks, probing only what
// has no recent result; see health.Service.LastStorageHealth.
func (e *Engine) LastStorageHealth(ctx context.Context) ([]StorageHealth, error) {
	return e.health.LastStorageHealth(ctx)
}

// NewHealthWorker returns a worker running a health cycle of e's
// datasources and storages every opts.Interval (zero fields mean the
// defaults); see health.Worker.
func NewHealthWorker(e *Engine, opts HealthOptions) *HealthWorker {
	if e == nil { // Run only reports the invalid options
		return health.NewWorker(nil, opts)
	}
	return health.NewWorker(e.health, opts)
}
