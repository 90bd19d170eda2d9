package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/notify"
)

// registerBackups registers the operations on the Backups tab, restores, notifications and templates.
func registerBackups(add adder, h *handlers) {
	// Backups tab (spec "Nova Aba Backups").
	add(huma.Operation{OperationID: "list-backup-datasources", Method: http.MethodGet, Path: "/api/backups/datasources",
		Summary: "List the datasources that have completed backups, with counts and last backup time", Tags: []string{"Backups"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listBackupDatasources) })
	add(huma.Operation{OperationID: "list-datasource-backups", Method: http.MethodGet, Path: "/api/backups/datasources/{datasourceId}",
		Summary: "List a datasource's completed backups, newest first, with the status of each storage copy",
		Tags:    []string{"Backups"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listDatasourceBackups) })
	add(huma.Operation{OperationID: "restore-backup", Method: http.MethodPost, Path: "/api/backups/{executionId}/restore",
		Summary: "Queue a restore (or a verification restore) of a completed backup",
		Description: "**Without `target_datasource_id`, the backup is restored over its own datasource: the current " +
			"database (or directory, or file) is replaced by the backup's content.** Set `safety_backup` to back it up first " +
			"(that backup is pinned: retention keeps it until someone unpins it), or name another datasource of the same type " +
			"in `target_datasource_id` to restore there instead and leave the source untouched. `verification_mode` restores " +
			"into a temporary database and touches neither.\n\n" +
			"Needs confirmation_phrase \"" + engine.ConfirmRestore + "\", or \"" + engine.ConfirmVerify +
			"\" with verification_mode=true; a wrong or missing phrase answers 422 and queues nothing. Needs permission " +
			PermRestore + ", or " + PermRestoreVerify + " in verification mode, when the server attaches permissions to requests.",
		Tags: []string{"Backups", "Executions"}, DefaultStatus: http.StatusAccepted},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.restoreBackup) })

	// Notifications.
	add(huma.Operation{OperationID: "list-notifications", Method: http.MethodGet, Path: "/api/notifications",
		Summary: "List in-app notifications, newest first", Tags: []string{"Notifications"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listNotifications) })
	add(huma.Operation{OperationID: "mark-notification-read", Method: http.MethodPut, Path: "/api/notifications/{id}/read",
		Summary: "Mark a notification read", Tags: []string{"Notifications"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.markNotificationRead) })
	add(huma.Operation{OperationID: "mark-all-notifications-read", Method: http.MethodPut, Path: "/api/notifications/read-all",
		Summary: "Mark every notification read", Tags: []string{"Notifications"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.markAllNotificationsRead) })
	add(huma.Operation{OperationID: "delete-notification", Method: http.MethodDelete, Path: "/api/notifications/{id}",
		Summary: "Delete a notification", Tags: []string{"Notifications"}, DefaultStatus: http.StatusNoContent},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.deleteNotification) })

	// Notification templates. Versions are immutable.
	add(huma.Operation{OperationID: "list-notification-templates", Method: http.MethodGet, Path: "/api/system/notification-templates",
		Summary: "List every version of every notification template", Tags: []string{"Notification templates"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listTemplates) })
	add(huma.Operation{OperationID: "create-notification-template", Method: http.MethodPost, Path: "/api/system/notification-templates",
		Summary:     "Store a template for a notification type and channel (version 1, or the next version)",
		Description: "The new version becomes the one notifications use; earlier versions are kept unchanged.",
		Tags:        []string{"Notification templates"}, DefaultStatus: http.StatusCreated},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.createTemplate) })
	add(huma.Operation{OperationID: "update-notification-template", Method: http.MethodPut, Path: "/api/system/notification-templates/{id}",
		Summary: "Store an edit of a template as its next version",
		Description: "Template versions are immutable: PUT does not change the version {id}; it stores the body as the next " +
			"version of the same type and channel (exactly as POST .../{id}/new-version), makes it the live one and returns it. " +
			"Omitted subject or body are copied from {id}.",
		Tags: []string{"Notification templates"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.updateTemplate) })
	add(huma.Operation{OperationID: "create-notification-template-version", Method: http.MethodPost,
		Path:        "/api/system/notification-templates/{id}/new-version",
		Summary:     "Store a new version of a template, from {id} and the body's changes",
		Description: "Omitted subject or body are copied from {id}, so an empty body re-publishes an older version as the newest.",
		Tags:        []string{"Notification templates"}, DefaultStatus: http.StatusCreated},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.newTemplateVersion) })

	// Notification channel settings.
	add(huma.Operation{OperationID: "get-notification-settings", Method: http.MethodGet, Path: "/api/system/settings/notifications",
		Summary: "Get the external notification channels' settings (secrets redacted)", Tags: []string{"Settings", "Notifications"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.getNotificationSettings) })
	add(huma.Operation{OperationID: "put-notification-settings", Method: http.MethodPut, Path: "/api/system/settings/notifications",
		Summary:     "Replace the external notification channels' settings",
		Description: "A secret sent as \"********\" (as GET returns it) keeps its stored value. Answers the stored settings, secrets redacted.",
		Tags:        []string{"Settings", "Notifications"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.putNotificationSettings) })
}

// ---------------------------------------------------------------------------
// Backups tab.

// BackupDatasource is a datasource on the Backups tab.
type BackupDatasource struct {
	DatasourceID          string    `json:"datasource_id" doc:"Datasource ID"`
	Name                  string    `json:"name" doc:"Datasource name"`
	Type                  string    `json:"type" doc:"Datasource type"`
	Status                string    `json:"status" enum:"healthy,warning,critical,unknown" doc:"Connection status"`
	BackupCount           int       `json:"backup_count" doc:"Completed backups"`
	LastBackupAt          time.Time `json:"last_backup_at" doc:"When the newest completed backup finished"`
	LastBackupExecutionID string    `json:"last_backup_execution_id" doc:"The newest completed backup"`
}

// BackupStorageStatus is the status of one backup's copy in one storage location.
type BackupStorageStatus struct {
	StorageLocationID   string     `json:"storage_location_id" doc:"Storage location ID"`
	StorageLocationName string     `json:"storage_location_name,omitempty" doc:"Storage location name, empty if it was deleted"`
	Status              string     `json:"status" enum:"available,missing,corrupt,unreachable,unknown" doc:"State of the copy: missing when its manifest.json or a part is gone (the files left are kept for recovery by hand), corrupt when a size or checksum does not match; unknown until checked"`
	ErrorMessage        string     `json:"error_message,omitempty" doc:"Why it is missing, corrupt or unreachable"`
	CheckedAt           *time.Time `json:"checked_at,omitempty" doc:"When the status was last recorded"`
}

// Backup is a completed backup on the Backups tab.
type Backup struct {
	Execution
	Restorable bool                  `json:"restorable" doc:"Whether a restore can be requested: false once retention deleted its files, or when every copy is missing or corrupt"`
	Storages   []BackupStorageStatus `json:"storages" doc:"Status of each storage copy"`
}

type backupDatasourcesOutput struct {
	Body []BackupDatasource
}

type datasourceBackupsInput struct {
	DatasourceID string `path:"datasourceId" doc:"Datasource ID"`
	Page
}

type backupsOutput struct {
	NextPage
	Body []Backup
}

func (h *handlers) listBackupDatasources(ctx context.Context, _ *struct{}) (*backupDatasourcesOutput, error) {
	const op = "list-backup-datasources"
	sums, err := h.e.Store().CompletedBackupsByDatasource(ctx)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	out := &backupDatasourcesOutput{Body: make([]BackupDatasource, 0, len(sums))}
	for _, s := range sums {
		b := BackupDatasource{DatasourceID: s.DatasourceID, Name: s.Name, Type: s.Type, Status: string(s.Status),
			BackupCount: s.Count, LastBackupExecutionID: s.LastID, LastBackupAt: s.LastAt}
		if s.LastFinished != nil {
			b.LastBackupAt = *s.LastFinished
		}
		out.Body = append(out.Body, b)
	}
	return out, nil
}

func (h *handlers) listDatasourceBackups(ctx context.Context, in *datasourceBackupsInput) (*backupsOutput, error) {
	const op = "list-datasource-backups"
	st := h.e.Store()
	if _, err := st.GetDatasource(ctx, in.DatasourceID); err != nil {
		return nil, problem(h.log, op, err)
	}
	xs, err := st.ListExecutions(ctx, engine.ExecutionFilter{DatasourceID: in.DatasourceID,
		Operation: engine.OperationBackup, Status: engine.ExecutionCompleted, Limit: in.probe(), Offset: in.Offset})
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	xs, more := cut(xs, in.Page)
	locs, err := st.ListStorageLocations(ctx)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	names := make(map[string]string, len(locs))
	for _, l := range locs {
		names[l.ID] = l.Name
	}
	jobs := map[string]*engine.BackupJob{}
	out := &backupsOutput{Body: make([]Backup, 0, len(xs)), NextPage: h.nextPage(ctx, in.Page, more)}
	for i := range xs {
		x := &xs[i]
		_, deleted := x.Metadata["retention_deleted_at"]
		b := Backup{Execution: executionOf(x), Restorable: !deleted && x.BackupPath != "", Storages: []BackupStorageStatus{}}
		ess, err := st.ListExecutionStorages(ctx, x.ID)
		if err != nil {
			return nil, problem(h.log, op, err)
		}
		seen := map[string]bool{}
		for _, es := range ess {
			at := es.UpdatedAt
			b.Storages = append(b.Storages, BackupStorageStatus{StorageLocationID: es.StorageLocationID,
				StorageLocationName: names[es.StorageLocationID], Status: string(es.Status),
				ErrorMessage: es.ErrorMessage, CheckedAt: &at})
			seen[es.StorageLocationID] = true
		}
		// The job's other storage locations have no recorded copy status.
		if x.JobID != "" {
			job, ok := jobs[x.JobID]
			if !ok {
				if job, err = st.GetBackupJob(ctx, x.JobID); err != nil && !errors.Is(err, engine.ErrNotFound) {
					return nil, problem(h.log, op, err)
				}
				jobs[x.JobID] = job
			}
			if job != nil {
				for _, id := range job.StorageLocationIDs {
					if !seen[id] {
						b.Storages = append(b.Storages, BackupStorageStatus{StorageLocationID: id, StorageLocationName: names[id],
							Status: string(engine.StorageUnknown)})
					}
				}
			}
		}
		if b.Restorable && len(b.Storages) > 0 && !slices.ContainsFunc(b.Storages, usableCopy) {
			b.Restorable = false
		}
		out.Body = append(out.Body, b)
	}
	return out, nil
}

// usableCopy reports whether a restore may find a verified copy there:
// anything but a copy known to be missing or corrupt.
func usableCopy(s BackupStorageStatus) bool {
	return s.Status != string(engine.StorageMissing) && s.Status != string(engine.StorageCorrupt)
}

// RestoreRequest is the body of POST /api/backups/{executionId}/restore.
type RestoreRequest struct {
	ConfirmationPhrase string `json:"confirmation_phrase,omitempty" doc:"\"RESTAURAR\", or \"VERIFICAR RESTORE\" with verification_mode=true" example:"RESTAURAR"`
	VerificationMode   bool   `json:"verification_mode,omitempty" doc:"Restore into a temporary database, check it and drop it (permission backups.restore_verify)"`
	// KeepVerificationDatabase keeps the temporary database.
	KeepVerificationDatabase bool   `json:"keep_verification_database,omitempty" doc:"Verification mode: keep the temporary database"`
	StorageLocationID        string `json:"storage_location_id,omitempty" doc:"Restore from this storage location only; empty tries the backup's storages in order"`
	Recreate                 bool   `json:"recreate,omitempty" doc:"Drop and recreate the target database first (network databases)"`
	SafetyBackup             bool   `json:"safety_backup,omitempty" doc:"Back up the datasource's current state before restoring over it"`
	TargetDatasourceID       string `json:"target_datasource_id,omitempty" doc:"Restore into this datasource (same type) instead of the backup's own, which stays untouched; empty restores over the backup's own datasource"`
}

type restoreInput struct {
	ExecutionID string `path:"executionId" doc:"The completed backup execution to restore"`
	Body        RestoreRequest
}

func (h *handlers) restoreBackup(ctx context.Context, in *restoreInput) (*executionOutput, error) {
	const op = "restore-backup"
	b := in.Body
	perm, what := PermRestore, "a restore"
	if b.VerificationMode {
		perm, what = PermRestoreVerify, "verification_mode"
	}
	if err := h.requirePermission(ctx, perm, what); err != nil {
		return nil, problem(h.log, op, err)
	}
	x, err := h.e.RequestRestore(ctx, nil, engine.RestoreRequest{ExecutionID: in.ExecutionID,
		ConfirmationPhrase: b.ConfirmationPhrase, VerificationMode: b.VerificationMode,
		KeepVerificationDatabase: b.KeepVerificationDatabase, StorageLocationID: b.StorageLocationID, TargetDatasourceID: b.TargetDatasourceID,
		Recreate: b.Recreate, SafetyBackup: b.SafetyBackup})
	if err != nil {
		if errors.Is(err, engine.ErrConfirmation) {
			err = inField("body.confirmation_phrase", nil, err)
		}
		return nil, problem(h.log, op, err)
	}
	return &executionOutput{Body: executionOf(x)}, nil
}

// ---------------------------------------------------------------------------
// Notifications.

// Notification is an in-app notification.
type Notification struct {
	ID         string    `json:"id" doc:"Notification ID"`
	Type       string    `json:"type" doc:"Notification type" example:"connection_lost"`
	Severity   string    `json:"severity" enum:"info,warning,critical" doc:"Severity"`
	Title      string    `json:"title" doc:"Short title"`
	Message    string    `json:"message" doc:"What happened"`
	EntityType string    `json:"entity_type,omitempty" doc:"Kind of entity it is about" example:"datasource"`
	EntityID   string    `json:"entity_id,omitempty" doc:"ID of that entity"`
	Read       bool      `json:"read" doc:"Whether it was marked read"`
	CreatedAt  time.Time `json:"created_at"`
}

func notificationOf(n *engine.Notification) Notification {
	return Notification{ID: n.ID, Type: n.Type, Severity: string(n.Severity), Title: n.Title, Message: n.Message,
		EntityType: n.EntityType, EntityID: n.EntityID, Read: n.Read, CreatedAt: n.CreatedAt}
}

type listNotificationsInput struct {
	Type   string `query:"type" doc:"Only notifications of this type" example:"connection_lost"`
	Unread bool   `query:"unread" doc:"Only unread notifications"`
	Page
}

type notificationsOutput struct {
	NextPage
	Body []Notification
}

type notificationOutput struct {
	Body Notification
}

// ReadAllResult is the answer of PUT /api/notifications/read-all.
type ReadAllResult struct {
	Updated int64 `json:"updated" doc:"Notifications marked read by this request"`
}

type readAllOutput struct {
	Body ReadAllResult
}

func (h *handlers) listNotifications(ctx context.Context, in *listNotificationsInput) (*notificationsOutput, error) {
	ns, err := h.e.Store().ListNotifications(ctx, engine.NotificationFilter{Type: in.Type, UnreadOnly: in.Unread,
		Limit: in.probe(), Offset: in.Offset})
	if err != nil {
		return nil, problem(h.log, "list-notifications", err)
	}
	ns, more := cut(ns, in.Page)
	out := &notificationsOutput{Body: make([]Notification, 0, len(ns)), NextPage: h.nextPage(ctx, in.Page, more)}
	for i := range ns {
		out.Body = append(out.Body, notificationOf(&ns[i]))
	}
	return out, nil
}

func (h *handlers) markNotificationRead(ctx context.Context, in *idInput) (*notificationOutput, error) {
	n, err := h.e.Store().MarkNotificationRead(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "mark-notification-read", err)
	}
	return &notificationOutput{Body: notificationOf(n)}, nil
}

func (h *handlers) markAllNotificationsRead(ctx context.Context, _ *struct{}) (*readAllOutput, error) {
	n, err := h.e.Store().MarkAllNotificationsRead(ctx)
	if err != nil {
		return nil, problem(h.log, "mark-all-notifications-read", err)
	}
	return &readAllOutput{Body: ReadAllResult{Updated: n}}, nil
}

func (h *handlers) deleteNotification(ctx context.Context, in *idInput) (*struct{}, error) {
	if err := h.e.Store().DeleteNotification(ctx, in.ID); err != nil {
		return nil, problem(h.log, "delete-notification", err)
	}
	return nil, nil
}

// ---------------------------------------------------------------------------
// Notification templates.

// NotificationTemplate is one immutable version of a message template.
type NotificationTemplate struct {
	ID        string    `json:"id" doc:"ID of this version"`
	Type      string    `json:"type" doc:"Notification type it renders" example:"backup_failed"`
	Channel   string    `json:"channel" enum:"email,whatsapp,webhook" doc:"Channel it renders for"`
	Version   int       `json:"version" doc:"Version number, from 1"`
	Subject   string    `json:"subject,omitempty" doc:"Subject template (email)"`
	Body      string    `json:"body" doc:"Body template (Go text/template)"`
	Active    bool      `json:"active" doc:"Whether it is the version notifications use (the newest of its type and channel)"`
	CreatedAt time.Time `json:"created_at"`
}

func templateOf(t *engine.NotificationTemplate, active bool) NotificationTemplate {
	return NotificationTemplate{ID: t.ID, Type: t.Key, Channel: t.Channel, Version: t.Version, Subject: t.Subject,
		Body: t.Body, Active: active, CreatedAt: t.CreatedAt}
}

// NotificationTemplateCreate is the body of POST /api/system/notification-templates.
type NotificationTemplateCreate struct {
	Type    string `json:"type" minLength:"1" maxLength:"100" doc:"Notification type" example:"backup_failed"`
	Channel string `json:"channel" enum:"email,whatsapp,webhook" doc:"Channel"`
	Subject string `json:"subject,omitempty" maxLength:"1000" doc:"Subject template (email)"`
	Body    string `json:"body" minLength:"1" maxLength:"65536" doc:"Body template (Go text/template)"`
}

// NotificationTemplateChange is the body of PUT
// /api/system/notification-templates/{id} and POST .../{id}/new-version:
// omitted fields are copied from {id}.
type NotificationTemplateChange struct {
	Subject *string `json:"subject,omitempty" maxLength:"1000" doc:"Subject template; omitted copies it from {id}"`
	Body    *string `json:"body,omitempty" minLength:"1" maxLength:"65536" doc:"Body template; omitted copies it from {id}"`
}

type templatesOutput struct {
	Body []NotificationTemplate
}

type templateOutput struct {
	Body NotificationTemplate
}

type createTemplateInput struct {
	Body NotificationTemplateCreate
}

type changeTemplateInput struct {
	ID   string `path:"id" doc:"ID of the template version to start from"`
	Body NotificationTemplateChange
}

func (h *handlers) listTemplates(ctx context.Context, _ *struct{}) (*templatesOutput, error) {
	ts, err := h.e.Templates(ctx)
	if err != nil {
		return nil, problem(h.log, "list-notification-templates", err)
	}
	latest := map[[2]string]int{}
	for _, t := range ts {
		k := [2]string{t.Key, t.Channel}
		latest[k] = max(latest[k], t.Version)
	}
	out := &templatesOutput{Body: make([]NotificationTemplate, 0, len(ts))}
	for i := range ts {
		t := &ts[i]
		out.Body = append(out.Body, templateOf(t, latest[[2]string{t.Key, t.Channel}] == t.Version))
	}
	return out, nil
}

// addTemplateVersion stores a version and answers it; the errors name the
// body field.
func (h *handlers) addTemplateVersion(ctx context.Context, op, typ, channel, subject, body string) (*templateOutput, error) {
	t, err := h.e.AddTemplateVersion(ctx, typ, channel, subject, body)
	if err != nil {
		if errors.Is(err, engine.ErrInvalid) && errors.Is(err, notify.ErrTemplate) {
			loc := "body.body"
			if strings.Contains(err.Error(), " subject: ") {
				loc = "body.subject"
			}
			err = inField(loc, nil, err)
		}
		return nil, problem(h.log, op, err)
	}
	return &templateOutput{Body: templateOf(t, true)}, nil
}

func (h *handlers) createTemplate(ctx context.Context, in *createTemplateInput) (*templateOutput, error) {
	b := in.Body
	return h.addTemplateVersion(ctx, "create-notification-template", strings.TrimSpace(b.Type), b.Channel, b.Subject, b.Body)
}

func (h *handlers) changeTemplate(ctx context.Context, op string, in *changeTemplateInput) (*templateOutput, error) {
	t, err := h.e.Store().GetNotificationTemplate(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	subject, body := t.Subject, t.Body
	if in.Body.Subject != nil {
		subject = *in.Body.Subject
	}
	if in.Body.Body != nil {
		body = *in.Body.Body
	}
	return h.addTemplateVersion(ctx, op, t.Key, t.Channel, subject, body)
}

func (h *handlers) updateTemplate(ctx context.Context, in *changeTemplateInput) (*templateOutput, error) {
	return h.changeTemplate(ctx, "update-notification-template", in)
}

func (h *handlers) newTemplateVersion(ctx context.Context, in *changeTemplateInput) (*templateOutput, error) {
	return h.changeTemplate(ctx, "create-notification-template-version", in)
}

// ---------------------------------------------------------------------------
// Notification channel settings.

type notificationSettingsOutput struct {
	Body notify.ChannelSettings
}

type putNotificationSettingsInput struct {
	Body notify.ChannelSettings
}

func (h *handlers) getNotificationSettings(ctx context.Context, _ *struct{}) (*notificationSettingsOutput, error) {
	s, err := h.e.NotificationSettings(ctx)
	if err != nil {
		return nil, problem(h.log, "get-notification-settings", err)
	}
	return &notificationSettingsOutput{Body: s}, nil
}

func (h *handlers) putNotificationSettings(ctx context.Context, in *putNotificationSettingsInput) (*notificationSettingsOutput, error) {
	const op = "put-notification-settings"
	if err := h.e.SetNotificationSettings(ctx, in.Body); err != nil {
		if fes := settingsFieldErrors(err); len(fes) > 0 && errors.Is(err, engine.ErrInvalid) {
			details := make([]error, len(fes))
			for i, fe := range fes {
				// No value: it may be a secret.
				details[i] = inField("body."+fe.Field, nil, errors.New(fe.Message))
			}
			return nil, huma.NewError(http.StatusUnprocessableEntity, message(err), details...)
		}
		return nil, problem(h.log, op, err)
	}
	return h.getNotificationSettings(ctx, nil)
}

// settingsFieldErrors returns every notify.FieldError in err's tree.
func settingsFieldErrors(err error) []*notify.FieldError {
	var out []*notify.FieldError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if fe, ok := err.(*notify.FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}
