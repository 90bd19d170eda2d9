package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

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

// DatasourceUpdate is the body of PUT /api/datasources/{id}: it replaces
// the name, the connection and (when given) the enabled flag.
type DatasourceUpdate struct {
	Name          string            `json:"name" minLength:"1" maxLength:"200" doc:"Unique name" example:"Banco Produção"`
	Type          string            `json:"type,omitempty" doc:"Datasource type; it cannot change, so omit it or give the current one" example:"postgres"`
	Host          string            `json:"host,omitempty" doc:"Database host" example:"db.internal"`
	Port          int               `json:"port,omitempty" minimum:"0" maximum:"65535" doc:"Database port" example:"5432"`
	Database      string            `json:"database,omitempty" doc:"Database name" example:"app"`
	Username      string            `json:"username,omitempty" doc:"Database user" example:"backup"`
	Password      string            `json:"password,omitempty" writeOnly:"true" doc:"New database password; omitted (or empty) keeps the stored one. Stored encrypted and never returned"`
	ClearPassword bool              `json:"clear_password,omitempty" doc:"Remove the stored password (connect without one); cannot be combined with password"`
	Path          string            `json:"path,omitempty" doc:"File path (sqlite) or directory (files)"`
	Options       map[string]string `json:"options,omitempty" doc:"Driver options"`
	Enabled       *bool             `json:"enabled,omitempty" doc:"Whether health checks and backups run; omitted keeps the current value"`
}

type listDatasourcesInput struct {
	Type   string `query:"type" doc:"Only datasources of this type" example:"postgres"`
	Status string `query:"status" enum:"healthy,warning,critical,unknown" doc:"Only datasources with this connection status"`
	Page
}

type updateDatasourceInput struct {
	ID   string `path:"id" doc:"Datasource ID"`
	Body DatasourceUpdate
}

type datasourcesOutput struct {
	NextPage
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
	dss, err := h.e.Store().FindDatasources(ctx, engine.DatasourceFilter{Type: in.Type,
		Status: engine.DatasourceStatus(in.Status), Limit: in.probe(), Offset: in.Offset})
	if err != nil {
		return nil, problem(h.log, "list-datasources", err)
	}
	body, more := pageOf(dss, in.Page, datasourceOf)
	return &datasourcesOutput{Body: body, NextPage: h.nextPage(ctx, in.Page, more)}, nil
}

func (h *handlers) createDatasource(ctx context.Context, in *createDatasourceInput) (*datasourceOutput, error) {
	b := in.Body
	if err := h.knownType(b.Type); err != nil {
		return nil, problem(h.log, "create-datasource", err)
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

// knownType checks a datasource type in the handler, not only in the
// engine, so the problem names the field.
func (h *handlers) knownType(typ string) error {
	if _, err := h.e.Drivers().Lookup(typ); err != nil {
		return inField("body.type", typ,
			fmt.Errorf("%w: %w: set type to one of %v", engine.ErrInvalid, drivers.ErrUnknownType, h.e.Drivers().Types()))
	}
	return nil
}

// datasourceFields are the body fields an engine error about a datasource
// may name.
var datasourceFields = []string{"type", "name"}

func (h *handlers) updateDatasource(ctx context.Context, in *updateDatasourceInput) (*datasourceOutput, error) {
	const op = "update-datasource"
	cur, err := h.e.Store().GetDatasource(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	b := in.Body
	if b.Type != "" {
		if err := h.knownType(b.Type); err != nil {
			return nil, problem(h.log, op, err)
		}
	}
	var pw *string
	switch {
	case b.ClearPassword && b.Password != "":
		return nil, problem(h.log, op, inField("body.clear_password", true,
			fmt.Errorf("%w: clear_password with a password: send one or the other", engine.ErrInvalid)))
	case b.ClearPassword:
		pw = new(string)
	case b.Password != "":
		pw = &b.Password
	}
	ds := &engine.Datasource{ID: cur.ID, Name: b.Name, Type: b.Type, Host: b.Host, Port: b.Port, Database: b.Database,
		Username: b.Username, Path: b.Path, Options: b.Options, Enabled: cur.Enabled}
	if b.Enabled != nil {
		ds.Enabled = *b.Enabled
	}
	if err := h.e.UpdateDatasource(ctx, ds, pw); err != nil {
		return nil, problem(h.log, op, inBody(err, b.Name, datasourceFields...))
	}
	return h.getDatasource(ctx, &idInput{ID: in.ID})
}

func (h *handlers) deleteDatasource(ctx context.Context, in *idInput) (*struct{}, error) {
	if err := h.e.DeleteDatasource(ctx, in.ID); err != nil {
		return nil, problem(h.log, "delete-datasource", err)
	}
	return nil, nil
}

// registerDatasources registers the datasource operations beyond those of
// Register: update and delete.
func registerDatasources(reg adder, h *handlers) {
	tags := []string{"Datasources"}
	reg(huma.Operation{OperationID: "update-datasource", Method: http.MethodPut, Path: "/api/datasources/{id}",
		Summary: "Replace a datasource's name, connection and enabled flag (the password is write-only)",
		Description: "The password is write-only: omit `password` (or send it empty) to keep the stored one, send a " +
			"new `password` to replace it, or send `\"clear_password\": true` to remove it. A boolean flag rather " +
			"than `\"password\": null`, because generated clients seldom tell a null from an absent field. " +
			"`type` cannot change (omit it or give the current one). Changing the connection or the password " +
			"resets the health status to unknown until the next check.",
		Tags: tags},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.updateDatasource) })
	reg(huma.Operation{OperationID: "delete-datasource", Method: http.MethodDelete, Path: "/api/datasources/{id}",
		Summary: "Delete a datasource nothing refers to (its health checks go with it)",
		Description: "Refused with 409, naming them, while backup jobs or sync jobs use the datasource (delete " +
			"them first), or while executions refer to it: its backups stay in storage and are listed and " +
			"restored through it, so it cannot go; disable it instead (PUT with `\"enabled\": false`).",
		Tags: tags, DefaultStatus: http.StatusNoContent},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.deleteDatasource) })
}
