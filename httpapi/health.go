package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/dataguardian/dataguardian/engine"
)

// HealthCheck is one recorded connectivity check of a datasource.
type HealthCheck struct {
	ID           string         `json:"id" doc:"Health check ID"`
	DatasourceID string         `json:"datasource_id" doc:"Datasource checked"`
	CheckedAt    time.Time      `json:"checked_at" doc:"When the check ran"`
	Status       string         `json:"status" enum:"ok,timeout,auth_failed,unreachable,error" doc:"Outcome of the check"`
	LatencyMS    *int64         `json:"latency_ms" nullable:"true" doc:"Round trip in milliseconds, null when there was no answer"`
	Metadata     map[string]any `json:"metadata,omitempty" doc:"Database version, active connections, …"`
	ErrorMessage string         `json:"error_message,omitempty" doc:"Why the check failed"`
}

func healthCheckOf(c *engine.HealthCheck) HealthCheck {
	return HealthCheck{ID: c.ID, DatasourceID: c.DatasourceID, CheckedAt: c.CheckedAt, Status: string(c.Status),
		LatencyMS: c.LatencyMS, Metadata: c.Metadata, ErrorMessage: c.ErrorMessage}
}

type listHealthChecksInput struct {
	ID string `path:"id" doc:"Datasource ID"`
	Page
}

type healthChecksOutput struct {
	NextPage
	Body []HealthCheck
}

type healthCheckOutput struct {
	Body HealthCheck
}

func (h *handlers) listHealthChecks(ctx context.Context, in *listHealthChecksInput) (*healthChecksOutput, error) {
	// The datasource must exist: an unknown id is a 404, not an empty list.
	if _, err := h.e.Store().GetDatasource(ctx, in.ID); err != nil {
		return nil, problem(h.log, "list-datasource-health-checks", err)
	}
	cs, err := h.e.Store().ListHealthChecks(ctx, in.ID, in.probe(), in.Offset)
	if err != nil {
		return nil, problem(h.log, "list-datasource-health-checks", err)
	}
	body, more := pageOf(cs, in.Page, healthCheckOf)
	return &healthChecksOutput{Body: body, NextPage: h.nextPage(ctx, in.Page, more)}, nil
}

func (h *handlers) checkDatasource(ctx context.Context, in *idInput) (*healthCheckOutput, error) {
	c, err := h.e.CheckDatasource(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "check-datasource", err)
	}
	return &healthCheckOutput{Body: healthCheckOf(c)}, nil
}

// Health is the body of GET /health.
type Health struct {
	Status        string    `json:"status" enum:"ok,error" doc:"ok when the service can serve requests"`
	MetadataStore string    `json:"metadata_store" enum:"ok,error" doc:"Whether the metadata database answers"`
	Time          time.Time `json:"time" doc:"Server time"`
}

type healthOutput struct {
	Status int
	Body   Health
}

// health answers 200 when the metadata store answers a ping, else 503.
// The cause is logged, not returned: the endpoint is public.
func (h *handlers) health(ctx context.Context, _ *struct{}) (*healthOutput, error) {
	out := &healthOutput{Status: http.StatusOK, Body: Health{Status: "ok", MetadataStore: "ok", Time: time.Now().UTC()}}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := h.e.Store().Ping(pctx); err != nil {
		h.log.Error("health: ping metadata store", "err", err)
		out.Status = http.StatusServiceUnavailable
		out.Body.Status, out.Body.MetadataStore = "error", "error"
	}
	return out, nil
}
