package engine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/sync/errgroup"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine/cleanup"
	"github.com/dataguardian/dataguardian/engine/health"
	"github.com/dataguardian/dataguardian/engine/pathpolicy"
	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/scheduler"
	"github.com/dataguardian/dataguardian/engine/secrets"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/notify"
)

// Defaults applied by Config.WithDefaults.
const (
	DefaultDataDir       = "dataguardian-data"
	DefaultMaxFileSizeMB = 1024
	DefaultCompression   = manifest.Gzip
	secretKeyFile        = "secret.key"
)

// Errors of the engine's operations.
var (

	// ErrNotRestorable reports an execution that is not a completed backup.
	ErrNotRestorable = errors.New("not a restorable backup")
)

// StorageOpener opens the Storage of a storage location of one type.
type StorageOpener = store.StorageOpener

// Config configures an Engine. The zero value is usable: SQLite metadata
// and a secret key under DataDir, every built-in driver, local storage,
// notifications to the log.
type Config struct {
	// DataDir holds the embedded defaults: the SQLite metadata database and
	// the generated secret key. "" means DefaultDataDir in the working directory.
	DataDir string
	// DatabaseURL selects the metadata store (see StoreConfig); "" means
	// SQLite at DataDir/dataguardian.db.
	DatabaseURL string
	// AllowedPaths are the directories under which the paths of
	// datasources (a files directory, a SQLite file, a Unix socket, a
	// certificate file) and of local storage locations must lie, resolved
	// through symbolic links. nil means any absolute path, for a program
	// whose users are trusted with the whole machine; set it before
	// exposing the engine to others (the HTTP API). Whatever the roots,
	// relative paths and "/" are refused, and DataDir, the SQLite metadata
	// database and the secret key are never a datasource path nor inside
	// a storage location. A datasource never overlaps a local storage
	// location, whose backups its restore would overwrite.
	AllowedPaths []string
	// AllowedPathsFlag is how the operator widens AllowedPaths, named in
	// the errors about a refused path (dataguardian serve sets
	// "--allow-path"); "" names Config.AllowedPaths.
	AllowedPathsFlag string
	// SecretKey (32 bytes) seals datasource passwords at rest. nil means the
	// key in DataDir/secret.key, created (mode 0600) on first use.
	SecretKey []byte
	// Drivers maps datasource types to drivers; nil means none. The root
	// package's New fills in the built-ins (postgres, mysql, mariadb,
	// sqlite, files: package defaults); engine imports no concrete driver.
	Drivers *drivers.Registry
	// StorageOpeners maps storage location types to openers; nil means
	// none. The root package's New fills in the built-in one ({"local": a
	// directory given by config "path"}).
	StorageOpeners map[string]StorageOpener
	// Notifier receives every notification on the caller's path (it must
	// return promptly), besides the in-app records and the channels stored
	// with SetNotificationSettings (delivered in the background); nil means
	// notify.Log.
	Notifier notify.Notifier
	// Logger receives the engine's logs; nil means slog.Default().
	Logger *slog.Logger
	// Queue hands queued work to workers; nil means a StoreQueue on the
	// metadata store (durable; shared safely by processes on one PostgreSQL).
	Queue Queue
	// Worker, Scheduler configure the workers Start runs.
	Worker    WorkerOptions
	Scheduler SchedulerOptions
	// Health configures health checks (interval, per-check timeout, pool
	// size, thresholds); zero fields take the HealthOptions defaults.
	Health HealthOptions
	// Cleanup configures the cleanup worker (interval, queue task
	// retention); zero fields take the CleanupOptions defaults.
	Cleanup CleanupOptions
	// Concurrency bounds each compressor's goroutines; 0 means GOMAXPROCS.
	Concurrency int
	// AgeIdentities are the keys restores and verifications decrypt
	// encrypted backups with (see BackupJob.EncryptionRecipients and
	// manifest.ParseIdentities); backups need only the public keys.
	AgeIdentities []age.Identity
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// WithDefaults returns c with every zero field set to its documented default.
func (c Config) WithDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite://" + filepath.Join(c.DataDir, "dataguardian.db")
	}
	if c.Drivers == nil {
		c.Drivers = &drivers.Registry{}
	}
	if c.StorageOpeners == nil {
		c.StorageOpeners = map[string]StorageOpener{}
	}
	if c.Notifier == nil {
		c.Notifier = notify.Log{Logger: c.Logger}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	if err := c.Health.WithDefaults().Validate(); err != nil {
		return err
	}
	if c.Concurrency < 0 {
		return fmt.Errorf("%w: Concurrency %d: use 0 for one goroutine per CPU or a positive number", ErrInvalid, c.Concurrency)
	}
	if c.SecretKey != nil && len(c.SecretKey) != 32 {
		return fmt.Errorf("%w: SecretKey has %d bytes: %s", ErrInvalid, len(c.SecretKey), secrets.SecretKeyHelp)
	}
	return nil
}

// Engine runs backups and restores and keeps their records. It is safe for
// concurrent use.
type Engine struct {
	cfg    Config
	store  *Store
	sealer *Sealer
	paths  *pathpolicy.Policy
	log    *slog.Logger
	events Bus
	notifs *notifications
	health *health.Service
	// cleaner applies retention and sweeps abandoned run folders.
	cleaner *cleanup.Cleaner
}

// Events returns the bus on which the engine publishes status changes
// (executions now; datasources once health checks run).
func (e *Engine) Events() *Bus { return &e.events }

// New opens (and migrates) the metadata store and returns a ready Engine.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w: set Config.DataDir to a writable directory", cfg.DataDir, err)
	}
	key := cfg.SecretKey
	if key == nil {
		var err error
		if key, err = loadOrCreateKey(filepath.Join(cfg.DataDir, secretKeyFile)); err != nil {
			return nil, err
		}
	}
	sealer, err := secrets.NewSealer(key)
	if err != nil {
		return nil, err
	}
	paths, err := pathpolicy.New(pathpolicy.Options{AllowedPaths: cfg.AllowedPaths, DataDir: cfg.DataDir,
		DatabaseURL: cfg.DatabaseURL, Flag: cfg.AllowedPathsFlag}, cfg.Drivers)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	st.SetClock(cfg.Now)
	paths.SetStore(st)
	if cfg.Queue == nil {
		cfg.Queue = queue.NewStoreQueue(st, &queue.Options{Now: cfg.Now,
			// A restore half done is failed, never run again over the target.
			KindMaxAttempts: map[string]int{TaskRestore: 1, TaskVerify: 1, TaskSync: 1}})
	}
	e := &Engine{cfg: cfg, store: st, sealer: sealer, paths: paths, log: cfg.Logger}
	e.health = e.newHealth()
	e.cleaner = e.newCleaner()
	e.initNotifications(ctx)
	return e, nil
}

// Queue returns the queue the engine's workers take work from.
func (e *Engine) Queue() Queue { return e.cfg.Queue }

// Start runs the engine's background work until ctx is done: the scheduler
// (enqueues due backup jobs), the backup worker, the health worker, the
// cleanup worker, and a reload of the notification settings and templates
// that another process sharing the store changed (every 30 s). When
// ctx is done nothing new is claimed and running backups get
// Worker.ShutdownTimeout to finish; Start returns once everything stopped.
func (e *Engine) Start(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return NewScheduler(e, e.cfg.Queue, e.cfg.Scheduler).Run(ctx) })
	g.Go(func() error { return NewWorker(e, e.cfg.Queue, e.cfg.Worker).Run(ctx) })
	g.Go(func() error { return NewHealthWorker(e, e.cfg.Health).Run(ctx) })
	g.Go(func() error { return NewCleanupWorker(e, e.cfg.Cleanup).Run(ctx) })
	g.Go(func() error { return e.watchNotifications(ctx) })
	return g.Wait()
}

// loadOrCreateKey reads a base64 secret key file, creating it with a new
// random key (mode 0600) when it does not exist.
func loadOrCreateKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return secrets.DecodeSecretKey(string(data))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process created it first
		return loadOrCreateKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("create secret key: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	return key, f.Sync()
}

// Close waits briefly for pending notification deliveries and closes the
// metadata store.
func (e *Engine) Close() error {
	e.notifs.async.Close()
	return e.store.Close()
}

// Store returns the metadata store.
func (e *Engine) Store() *Store { return e.store }

// Drivers returns the driver registry.
func (e *Engine) Drivers() *drivers.Registry { return e.cfg.Drivers }

func (e *Engine) now() time.Time { return e.cfg.Now().UTC() }

// CreateDatasource validates ds, seals password (if any) into it and
// stores it. A new datasource starts enabled with status unknown. Its
// paths must be allowed (Config.AllowedPaths), and its driver's checks
// (drivers.Checker) pass: a password is never sent in clear to another
// machine, for one. Errors about one field are *FieldError.
func (e *Engine) CreateDatasource(ctx context.Context, ds *Datasource, password string) error {
	if err := e.validateDatasource(ds); err != nil {
		return err
	}
	if err := e.paths.CheckNewSource(ctx, ds, password); err != nil {
		return err
	}
	if password != "" {
		sealed, err := e.sealer.Seal([]byte(password))
		if err != nil {
			return err
		}
		ds.PasswordEncrypted = sealed
	}
	if ds.Status == "" {
		ds.Status = DatasourceUnknown
	}
	ds.Enabled = true
	return e.store.CreateDatasource(ctx, ds)
}

// Source returns the connection of ds for its driver, password unsealed.
// A path of ds no longer allowed (Config.AllowedPaths changed since it was
// stored) is an error matching ErrInvalid.
func (e *Engine) Source(ds *Datasource) (drivers.Source, error) {
	src := drivers.Source{Type: ds.Type, Host: ds.Host, Port: ds.Port, Database: ds.Database,
		Username: ds.Username, Path: ds.Path, Options: ds.Options}
	if err := e.paths.CheckSource(src); err != nil {
		return drivers.Source{}, err
	}
	if len(ds.PasswordEncrypted) > 0 {
		pw, err := e.sealer.Open(ds.PasswordEncrypted)
		if err != nil {
			return drivers.Source{}, fmt.Errorf("datasource %s password: %w", ds.Name, err)
		}
		src.Password = string(pw)
	}
	return src, nil
}

// CreateBackupJob validates job and stores it. Empty Compression means
// DefaultCompression, MaxFileSizeMB 0 means DefaultMaxFileSizeMB and
// RetryDelaySeconds 0 means DefaultRetryDelaySeconds. RetryAttempts is
// stored as given: the zero value never retries a failed backup, so a
// caller wanting retries sets it (the HTTP API sets DefaultRetryAttempts
// when a request leaves it out).
func (e *Engine) CreateBackupJob(ctx context.Context, job *BackupJob) error {
	jobDefaults(job)
	if err := e.validateJob(ctx, job); err != nil {
		return err
	}
	job.Enabled = true
	if job.Schedule != "" {
		next, _ := scheduler.NextAfter(job.Schedule, job.Timezone, e.now())
		job.NextExecutionAt = &next
	}
	return e.store.CreateBackupJob(ctx, job)
}

// jobDefaults sets the zero fields of job that have a default (see
// CreateBackupJob).
func jobDefaults(job *BackupJob) {
	if job.Compression == "" {
		job.Compression = string(DefaultCompression)
	}
	if job.MaxFileSizeMB == 0 {
		job.MaxFileSizeMB = DefaultMaxFileSizeMB
	}
	if job.RetryDelaySeconds == 0 {
		job.RetryDelaySeconds = DefaultRetryDelaySeconds
	}
}

// validateJob checks job, whose defaults are set (jobDefaults). Errors are
// *FieldError naming the field.
func (e *Engine) validateJob(ctx context.Context, job *BackupJob) error {
	bad := func(field, format string, args ...any) error {
		return store.InvalidField(field, "backup job %q: %s", job.Name, fmt.Sprintf(format, args...))
	}
	if job.Name == "" {
		return store.InvalidField("name", "backup job name is empty: give it a name")
	}
	ds, err := e.store.GetDatasource(ctx, job.DatasourceID)
	if err != nil {
		return bad("datasource_id", "datasource_id %q: %v", job.DatasourceID, err)
	}
	c, err := manifest.ParseCompression(job.Compression)
	if err != nil {
		return bad("compression", "compression: %v", err)
	}
	if _, err := manifest.BaseName(ds.Type, c); err != nil {
		return bad("compression", "compression: %v", err)
	}
	if job.MaxFileSizeMB < 0 {
		return bad("max_file_size_mb", "max_file_size_mb %d: use a positive number of MiB (0 means %d)", job.MaxFileSizeMB, DefaultMaxFileSizeMB)
	}
	if len(job.StorageLocationIDs) == 0 {
		return bad("storage_location_ids", "storage_location_ids is empty: give at least one storage location")
	}
	for _, id := range job.StorageLocationIDs {
		if _, err := e.store.GetStorageLocation(ctx, id); err != nil {
			return bad("storage_location_ids", "storage_location_ids: %q: %v", id, err)
		}
	}
	if err := job.Retention.Validate(); err != nil {
		return bad("retention", "retention: %v", err)
	}
	for i, r := range job.EncryptionRecipients {
		if err := manifest.CheckRecipient(r); err != nil {
			return bad(fmt.Sprintf("encryption_recipients[%d]", i), "encryption_recipients[%d]: %v", i, err)
		}
	}
	if job.RetryAttempts < 0 || job.RetryAttempts > MaxRetryAttempts {
		return bad("retry_attempts", "retry_attempts %d: use 0 (never retry) to %d", job.RetryAttempts, MaxRetryAttempts)
	}
	if job.RetryDelaySeconds < MinRetryDelaySeconds || job.RetryDelaySeconds > MaxRetryDelaySeconds {
		return bad("retry_delay_seconds", "retry_delay_seconds %d: use %d to %d seconds (0 means %d)", job.RetryDelaySeconds,
			MinRetryDelaySeconds, MaxRetryDelaySeconds, DefaultRetryDelaySeconds)
	}
	if job.Schedule != "" {
		if _, _, err := scheduler.Parse(job.Schedule, job.Timezone); err != nil {
			field := "schedule"
			if strings.HasPrefix(err.Error(), "timezone") {
				field = "timezone"
			}
			return bad(field, "%v", err)
		}
	}
	return nil
}

// ExecutionLogs returns the log lines of an execution, oldest first.
func (e *Engine) ExecutionLogs(ctx context.Context, executionID string) ([]ExecutionLog, error) {
	return e.store.ExecutionLogs(ctx, executionID)
}

// AllowedPaths returns the resolved directories datasources and local
// storage locations may use; nil means any absolute path (the data
// directory excepted).
func (e *Engine) AllowedPaths() []string { return e.paths.Roots() }
