package httpapi

import (
	"context"
	"fmt"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine"
)

// Datasource is a datasource as the API returns it. The password is
// write-only: it is accepted on create and never returned.
type Datasource struct {
	ID                  string            `json:"id" doc:"Datasource ID (UUID)" example:"550e8400-e29b-41d4-a716-446655440000"`
	Name                string            `json:"name" doc:"Unique name" example:"Banco Produção"`
	Type                string            `json:"type" doc:"Datasource type: postgres, mysql, mariadb, sqlite or files" example:"postgres"`
	Status              string            `json:"status" enum:"healthy,warning,critical,unknown" doc:"Connection status; unknown until the first check"`
	LastHealthCheckAt   *time.Time        `json:"last_health_check_at" nullable:"true" doc:"Time of the last health check, null before the first"`
	Host                string            `json:"host,omitempty" doc:"Database host"`
	Port                int               `json:"port,omitempty" doc:"Database port"`
	Database            string            `json:"database,omitempty" doc:"Database name"`
	Username            string            `json:"username,omitempty" doc:"Database user"`
	Path                string            `json:"path,omitempty" doc:"File path (sqlite) or directory (files)"`
	Options             map[string]string `json:"options,omitempty" doc:"Driver options"`
	Enabled             bool              `json:"enabled" doc:"Whether health checks and backups run"`
	ConsecutiveFailures int               `json:"consecutive_failures" doc:"Failed health checks in a row"`
	CreatedAt           time.Time         `json:"created_at"`
	UpdatedAt           time.Time         `json:"updated_at"`
}

func datasourceOf(d *engine.Datasource) Datasource {
	return Datasource{ID: d.ID, Name: d.Name, Type: d.Type, Status: string(d.Status),
		LastHealthCheckAt: d.LastHealthCheckAt, Host: d.Host, Port: d.Port, Database: d.Database,
		Username: d.Username, Path: d.Path, Options: d.Options, Enabled: d.Enabled,
		ConsecutiveFailures: d.ConsecutiveFailures, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

// DatasourceCreate is the body of POST /api/datasources.
type DatasourceCreate struct {
	Name     string            `json:"name" minLength:"1" maxLength:"200" doc:"Unique name" example:"Banco Produção"`
	Type     string            `json:"type" doc:"Datasource type: postgres, mysql, mariadb, sqlite or files" example:"postgres"`
	Host     string            `json:"host,omitempty" doc:"Database host" example:"db.internal"`
	Port     int               `json:"port,omitempty" minimum:"0" maximum:"65535" doc:"Database port" example:"5432"`
	Database string            `json:"database,omitempty" doc:"Database name" example:"app"`
	Username string            `json:"username,omitempty" doc:"Database user" example:"backup"`
	Password string            `json:"password,omitempty" writeOnly:"true" doc:"Database password; stored encrypted and never returned"`
	Path     string            `json:"path,omitempty" doc:"File path (sqlite) or directory (files)"`
	Options  map[string]string `json:"options,omitempty" doc:"Driver options"`
}

type listDatasourcesInput struct {
	Type string `query:"type" doc:"Only datasources of this type" example:"postgres"`
}

type datasourcesOutput struct {
	Body []Datasource
}

type datasourceOutput struct {
	Body Datasource
}

type createDatasourceInput struct {
	Body DatasourceCreate
}

type idInput struct {
	ID string `path:"id" doc:"ID (UUID)"`
}

func (h *handlers) listDatasources(ctx context.Context, in *listDatasourcesInput) (*datasourcesOutput, error) {
	dss, err := h.e.Store().ListDatasources(ctx)
	if err != nil {
		return nil, problem(h.log, "list-datasources", err)
	}
	out := &datasourcesOutput{Body: make([]Datasource, 0, len(dss))}
	for i := range dss {
		if in.Type == "" || dss[i].Type == in.Type {
			out.Body = append(out.Body, datasourceOf(&dss[i]))
		}
	}
	return out, nil
}

func (h *handlers) createDatasource(ctx context.Context, in *createDatasourceInput) (*datasourceOutput, error) {
	b := in.Body
	if _, err := h.e.Drivers().Lookup(b.Type); err != nil {
		// Checked here, not only by the engine, so the problem names the field.
		return nil, problem(h.log, "create-datasource", inField("body.type", b.Type,
			fmt.Errorf("%w: %w: set type to one of %v", engine.ErrInvalid, drivers.ErrUnknownType, h.e.Drivers().Types())))
	}
	ds := &engine.Datasource{Name: b.Name, Type: b.Type, Host: b.Host, Port: b.Port, Database: b.Database,
		Username: b.Username, Path: b.Path, Options: b.Options}
	if err := h.e.CreateDatasource(ctx, ds, b.Password); err != nil {
		return nil, problem(h.log, "create-datasource", err)
	}
	return &datasourceOutput{Body: datasourceOf(ds)}, nil
}

func (h *handlers) getDatasource(ctx context.Context, in *idInput) (*datasourceOutput, error) {
	ds, err := h.e.Store().GetDatasource(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "get-datasource", err)
	}
	return &datasourceOutput{Body: datasourceOf(ds)}, nil
}
