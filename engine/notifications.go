package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/notify"
)

// NotificationSettingsKey is the system_settings key holding the external
// channels' settings (notify.ChannelSettings as JSON, sealed).
const NotificationSettingsKey = "notifications.channels"

// enrichTimeout bounds the lookups that fill a notification's Data.
const enrichTimeout = 5 * time.Second

// notifications is the engine's notification fan-out, installed as
// Config.Notifier by New: every notification gets its template data
// filled in, goes to the configured Notifier on the caller's path (the
// in-process hook; notify.Log by default), and then to the channels of the
// stored settings in the background, each delivery with its own deadline,
// so a slow SMTP server or webhook never blocks a worker.
type notifications struct {
	e         *Engine
	extra     notify.Notifier // Config.Notifier; may be nil
	templates *notify.Templates
	live      atomic.Pointer[notify.Multi]
	setMu     sync.Mutex // serializes settings and template changes
	// settingsAt is the updated_at of the stored settings live holds
	// (guarded by setMu): refreshNotifications rebuilds live when the
	// stored row is newer, i.e. another process changed it.
	settingsAt time.Time
	async      *notify.Async // background delivery to the live channels
}

var _ notify.Notifier = (*notifications)(nil)

// initNotifications loads the stored templates and channel settings and
// installs the fan-out as e.cfg.Notifier. Unusable stored settings are
// logged and leave only the in-process Notifier; they never stop New.
func (e *Engine) initNotifications(ctx context.Context) {
	n := &notifications{e: e, extra: e.cfg.Notifier, templates: notify.NewTemplates(),
		async: notify.NewAsync(notify.AsyncOptions{Logger: e.log})}
	e.notifs = n
	e.cfg.Notifier = n
	if err := e.loadTemplates(ctx); err != nil {
		e.log.Warn("load notification templates", "err", err)
	}
	n.setMu.Lock()
	defer n.setMu.Unlock()
	e.loadChannels(ctx)
}

// loadChannels makes the stored channel settings live (n.setMu held).
// Unusable settings are logged and turn the external channels off.
func (e *Engine) loadChannels(ctx context.Context) {
	n := e.notifs
	s, at, err := e.storedChannelSettingsAt(ctx)
	n.settingsAt = at
	if err != nil {
		e.log.Warn("load notification settings: external channels off until they are set again", "err", err)
		n.live.Store(nil)
		return
	}
	m, err := s.Build(n.templates)
	if err != nil {
		e.log.Warn("build notification channels: external channels off until they are set again", "err", err)
		n.live.Store(nil)
		return
	}
	n.live.Store(&m)
}

// settingsPoll is how often Start re-reads the notification settings and
// templates, which another process sharing the metadata store may change.
const settingsPoll = 30 * time.Second

// watchNotifications runs refreshNotifications every settingsPoll until
// ctx is done.
func (e *Engine) watchNotifications(ctx context.Context) error {
	t := time.NewTicker(settingsPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			e.refreshNotifications(ctx)
		}
	}
}

// refreshNotifications picks up what another process stored: new template
// versions, and channel settings newer than the live ones.
func (e *Engine) refreshNotifications(ctx context.Context) {
	n := e.notifs
	n.setMu.Lock()
	defer n.setMu.Unlock()
	if err := e.loadTemplates(ctx); err != nil && ctx.Err() == nil {
		e.log.Warn("reload notification templates", "err", err)
	}
	st, err := e.store.GetSetting(ctx, NotificationSettingsKey)
	switch {
	case errors.Is(err, ErrNotFound) || (err == nil && !st.UpdatedAt.Equal(n.settingsAt)):
		e.loadChannels(ctx)
	case err != nil && ctx.Err() == nil:
		e.log.Warn("reload notification settings", "err", err)
	}
}

// Name returns "engine".
func (*notifications) Name() string { return "engine" }

// Notify fills n's template data, hands n to the in-process Notifier and
// starts its delivery to the external channels. Only the in-process
// Notifier's error is returned; external failures are logged.
func (n *notifications) Notify(ctx context.Context, x notify.Notification) error {
	x = n.e.enrichNotification(ctx, x)
	var err error
	if n.extra != nil {
		err = n.extra.Notify(ctx, x)
	}
	n.deliver(x)
	return err
}

// deliver sends x to the live channels in the background.
func (n *notifications) deliver(x notify.Notification) {
	if m := n.live.Load(); m != nil && len(*m) > 0 {
		n.async.Deliver(m, x)
	}
}

// enrichNotification fills the template data of a notification about an
// execution (job_name, datasource_name, size_bytes, duration_seconds,
// error, execution_id, …) without overriding keys already set.
func (e *Engine) enrichNotification(ctx context.Context, x notify.Notification) notify.Notification {
	if x.EntityType != "execution" || x.EntityID == "" {
		return x
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enrichTimeout)
	defer cancel()
	data := map[string]any{"execution_id": x.EntityID}
	if exec, err := e.store.GetExecution(ctx, x.EntityID); err == nil {
		data["operation"] = string(exec.Operation)
		data["status"] = string(exec.Status)
		if exec.SizeBytes > 0 {
			data["size_bytes"] = exec.SizeBytes
			data["compressed_size_bytes"] = exec.CompressedSizeBytes
		}
		if exec.FinishedAt != nil && exec.StartedAt != nil {
			data["duration_seconds"] = float64(exec.DurationMS) / 1000
		}
		if exec.ErrorMessage != "" {
			data["error"] = exec.ErrorMessage
		}
		if exec.BackupPath != "" {
			data["backup_path"] = exec.BackupPath
		}
		if exec.JobID != "" {
			if job, err := e.store.GetBackupJob(ctx, exec.JobID); err == nil {
				data["job_name"] = job.Name
			}
		}
		if ds, err := e.store.GetDatasource(ctx, exec.DatasourceID); err == nil {
			data["datasource_name"] = ds.Name
			data["datasource_type"] = ds.Type
		}
		if names := e.availableStorages(ctx, exec.ID); names != "" {
			data["storage"] = names
		}
	}
	maps.Copy(data, x.Data) // the caller's keys win
	x.Data = data
	return x
}

// availableStorages names the storage locations holding a copy of
// execution id ("disk1, offsite"), or "".
func (e *Engine) availableStorages(ctx context.Context, id string) string {
	sts, err := e.store.ListExecutionStorages(ctx, id)
	if err != nil {
		return ""
	}
	var names []string
	for _, st := range sts {
		if st.Status != StorageAvailable {
			continue
		}
		if loc, err := e.store.GetStorageLocation(ctx, st.StorageLocationID); err == nil {
			names = append(names, loc.Name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// notificationSubject is what the notification of a finished execution
// names: its datasource, and its job for a backup (empty when they are
// gone).
type notificationSubject struct {
	backup          bool
	job, datasource string
	datasourceType  string
}

func (e *Engine) notificationSubject(ctx context.Context, exec *Execution) notificationSubject {
	s := notificationSubject{backup: exec.Operation == OperationBackup}
	if s.backup && exec.JobID != "" {
		if job, err := e.store.GetBackupJob(ctx, exec.JobID); err == nil {
			s.job = job.Name
		}
	}
	if ds, err := e.store.GetDatasource(ctx, exec.DatasourceID); err == nil {
		s.datasource, s.datasourceType = ds.Name, ds.Type
	}
	return s
}

// title is the notification title base ("backup completed", "backup
// failed, retry queued", …) prefixed with the job's name.
func (s notificationSubject) title(base string) string {
	if !s.backup || s.job == "" {
		return base
	}
	return fmt.Sprintf("%s: %s", s.job, base)
}

// message says what the finished execution exec did: which datasource
// (and job, for a backup; which backup, for a restore or verification),
// and the duration (and sizes, for a backup) when it completed, or the
// error when it failed or was cancelled.
func (s notificationSubject) message(exec *Execution) string {
	what, of := "Backup", " of"
	switch exec.Operation {
	case OperationRestore:
		what, of = "Restore", " into"
	case OperationVerify:
		what = "Verification"
	}
	if s.datasource != "" {
		what += fmt.Sprintf("%s datasource %q", of, s.datasource)
		if s.datasourceType != "" {
			what += " (" + s.datasourceType + ")"
		}
	}
	if s.job != "" {
		what += fmt.Sprintf(" by job %q", s.job)
	}
	if exec.SourceExecutionID != "" {
		what += " from backup " + exec.SourceExecutionID
	}
	took := ""
	if exec.StartedAt != nil {
		took = " in " + (time.Duration(exec.DurationMS) * time.Millisecond).String()
	}
	switch exec.Status {
	case ExecutionCompleted:
		if !s.backup {
			return what + " completed" + took + "."
		}
		msg := fmt.Sprintf("%s completed%s: %s, %s stored", what, took, manifest.FormatBytes(exec.SizeBytes), manifest.FormatBytes(exec.CompressedSizeBytes))
		if exec.BackupPath != "" {
			msg += " in " + exec.BackupPath
		}
		return msg + "."
	case ExecutionCancelled:
		return fmt.Sprintf("%s cancelled%s: %s", what, strings.Replace(took, " in ", " after ", 1), exec.ErrorMessage)
	}
	return fmt.Sprintf("%s failed%s: %s", what, strings.Replace(took, " in ", " after ", 1), exec.ErrorMessage)
}

// storedChannelSettings returns the stored channel settings, secrets in
// clear; none stored gives the zero settings.
func (e *Engine) storedChannelSettings(ctx context.Context) (notify.ChannelSettings, error) {
	s, _, err := e.storedChannelSettingsAt(ctx)
	return s, err
}

// storedChannelSettingsAt is storedChannelSettings with the stored row's
// updated_at (zero when none is stored).
func (e *Engine) storedChannelSettingsAt(ctx context.Context) (notify.ChannelSettings, time.Time, error) {
	var s notify.ChannelSettings
	st, err := e.store.GetSetting(ctx, NotificationSettingsKey)
	if errors.Is(err, ErrNotFound) {
		return s, time.Time{}, nil
	}
	if err != nil {
		return s, time.Time{}, err
	}
	plain := []byte(st.Value)
	if st.Encrypted {
		var b64 string
		if err := json.Unmarshal(st.Value, &b64); err != nil {
			return s, st.UpdatedAt, fmt.Errorf("setting %s: sealed value is not a JSON string: %w", NotificationSettingsKey, err)
		}
		sealed, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return s, st.UpdatedAt, fmt.Errorf("setting %s: sealed value is not base64: %w", NotificationSettingsKey, err)
		}
		if plain, err = e.sealer.Open(sealed); err != nil {
			return s, st.UpdatedAt, fmt.Errorf("setting %s: %w", NotificationSettingsKey, err)
		}
	}
	if err := json.Unmarshal(plain, &s); err != nil {
		return s, st.UpdatedAt, fmt.Errorf("setting %s: %w", NotificationSettingsKey, err)
	}
	return s, st.UpdatedAt, nil
}

// NotificationSettings returns the external channels' settings with every
// secret redacted ("********"); send them back unchanged to keep a secret.
func (e *Engine) NotificationSettings(ctx context.Context) (notify.ChannelSettings, error) {
	s, err := e.storedChannelSettings(ctx)
	if err != nil {
		return notify.ChannelSettings{}, fmt.Errorf("notification settings: %w", err)
	}
	return s.Redacted(), nil
}

// SetNotificationSettings validates s and stores it sealed with the
// engine's secret key, then makes its channels live for the next
// notification. A secret left as "********" keeps its stored value, unless
// its channel's destination changed (see
// notify.ChannelSettings.KeepSecrets): then it must be sent again. Invalid
// settings give an error matching ErrInvalid and
// notify.ErrInvalidSettings, whose notify.FieldErrors name each field.
func (e *Engine) SetNotificationSettings(ctx context.Context, s notify.ChannelSettings) error {
	n := e.notifs
	n.setMu.Lock()
	defer n.setMu.Unlock()
	prev, err := e.storedChannelSettings(ctx)
	if err != nil && !errors.Is(err, ErrDecrypt) { // a value sealed with a lost key is replaced
		return fmt.Errorf("set notification settings: %w", err)
	}
	if s, err = s.KeepSecrets(prev); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	m, err := s.Build(n.templates)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	plain, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("set notification settings: %w", err)
	}
	sealed, err := e.sealer.Seal(plain)
	if err != nil {
		return fmt.Errorf("set notification settings: %w", err)
	}
	value, _ := json.Marshal(base64.StdEncoding.EncodeToString(sealed))
	if err := e.store.PutSetting(ctx, &Setting{Key: NotificationSettingsKey, Value: value, Encrypted: true}); err != nil {
		return fmt.Errorf("set notification settings: %w", err)
	}
	n.live.Store(&m)
	if st, err := e.store.GetSetting(ctx, NotificationSettingsKey); err == nil {
		n.settingsAt = st.UpdatedAt // as stored, so the next refresh keeps m
	}
	return nil
}

// loadTemplates reads every stored template version into the live
// Templates; versions already loaded are left as they are (not parsed
// again), new ones are parsed but not rendered: each was rendered within
// the limits when AddTemplateVersion stored it, and one over a limit at
// send time falls back to the built-in default. A row that does not parse
// is logged and skipped.
func (e *Engine) loadTemplates(ctx context.Context) error {
	rows, err := e.store.ListNotificationTemplates(ctx)
	if err != nil {
		return err
	}
	for _, r := range rows {
		v := notify.TemplateVersion{Type: r.Key, Channel: r.Channel, Version: r.Version, Subject: r.Subject, Body: r.Body}
		if err := e.notifs.templates.LoadVersion(v); err != nil {
			e.log.Warn("notification template skipped", "id", r.ID, "key", r.Key, "channel", r.Channel, "version", r.Version, "err", err)
		}
	}
	return nil
}

// AddTemplateVersion stores a new version of the template for notification
// type typ on channel ("email", "whatsapp", "webhook") and makes it the one
// the next notification uses. Earlier versions are kept unchanged. A
// template that does not parse, or does not render a sample within the
// limits of notify.Templates, gives an error matching ErrInvalid and
// notify.ErrTemplate (notify.ErrTemplateLimit for a limit).
func (e *Engine) AddTemplateVersion(ctx context.Context, typ, channel, subject, body string) (*NotificationTemplate, error) {
	n := e.notifs
	n.setMu.Lock()
	defer n.setMu.Unlock()
	// Pick up versions other processes stored, so the number is the next one.
	if err := e.loadTemplates(ctx); err != nil {
		return nil, fmt.Errorf("add template version: %w", err)
	}
	v := n.templates.NextVersion(typ, channel)
	// A stored row that no longer loads (over a limit) still holds its number.
	stored, err := e.store.LastTemplateVersion(ctx, typ, channel)
	if err != nil {
		return nil, fmt.Errorf("add template version: %w", err)
	}
	v = max(v, stored+1)
	// Validate (parse and trial render) on a scratch set, so a failed
	// insert leaves nothing live; the live set then only parses it.
	if err := notify.NewTemplates().Set(typ, channel, v, subject, body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	row := &NotificationTemplate{Key: typ, Channel: channel, Version: v, Subject: subject, Body: body, Active: true}
	if err := e.store.CreateNotificationTemplate(ctx, row); err != nil {
		return nil, fmt.Errorf("add template version: %w", err)
	}
	tv := notify.TemplateVersion{Type: typ, Channel: channel, Version: v, Subject: subject, Body: body}
	if err := n.templates.LoadVersion(tv); err != nil {
		return nil, fmt.Errorf("add template version: %w", err)
	}
	return row, nil
}

// Templates returns every stored template version, by type, channel and
// version.
func (e *Engine) Templates(ctx context.Context) ([]NotificationTemplate, error) {
	return e.store.ListNotificationTemplates(ctx)
}
