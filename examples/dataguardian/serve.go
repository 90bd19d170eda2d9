package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dataguardian/dataguardian"

	"filippo.io/age"
	"golang.org/x/sync/errgroup"

	"github.com/dataguardian/dataguardian/engine"
	sealer "github.com/dataguardian/dataguardian/engine/secrets"
	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/manifest"
)

// Environment variables of the server commands. A flag given on the command
// line wins over its variable.
const (
	envListen          = "DG_LISTEN"
	envDataDir         = "DG_DATA_DIR"
	envDatabaseURL     = "DG_DATABASE_URL"
	envAdminToken      = "DG_ADMIN_TOKEN" // a secret: environment only, never a flag
	envLogLevel        = "DG_LOG_LEVEL"
	envLogFormat       = "DG_LOG_FORMAT"
	envShutdownTimeout = "DG_SHUTDOWN_TIMEOUT"
	envStorageDir      = "DG_STORAGE_DIR"
	envMetricsAuth     = "DG_METRICS_AUTH"
	envPublicURL       = "DG_PUBLIC_URL"
	envAgeIdentity     = "DG_AGE_IDENTITY"
	envAllowPaths      = "DG_ALLOW_PATHS" // directories separated by ":"
)

// Defaults of serve.
const (
	defaultListen          = "127.0.0.1:8080"
	defaultDataDir         = "./" + engine.DefaultDataDir
	defaultShutdownTimeout = time.Minute
	// defaultStorageName is the storage location serve creates at
	// DATA_DIR/backups when none exists.
	defaultStorageName = "local"
)

// HTTP server limits. There is no WriteTimeout: downloads of large
// backups and the event stream may take as long as they need.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// readyPrefix starts the line serve prints once it accepts connections.
const readyPrefix = "listening on http://"

// adminTokenLabel starts the line holding a generated admin token.
const adminTokenLabel = "admin token: "

// Help of serve (see commands in cli.go).
const (
	serveSummary = "Run the HTTP API (with the scheduler and workers) until SIGINT or SIGTERM. Embedded defaults:\n" +
		"SQLite metadata and a storage location \"" + defaultStorageName + "\" at DATA_DIR/backups (--storage-dir), created on first start.\n" +
		"Every flag may be set by its environment variable instead (the flag wins). Environment only:\n" +
		"  " + envAdminToken + "  an admin API token secret (32+ characters) to accept; without it, the first\n" +
		"                  start creates an admin token and prints it once on stderr\n" +
		"  " + engine.SecretKeyEnv + "   base64 of the 32-byte key sealing stored passwords (default DATA_DIR/secret.key)\n" +
		"Prints \"" + readyPrefix + "ADDR\" on stderr once it accepts connections; logs go to stderr."
	serveExample = envAdminToken + "=$(openssl rand -hex 32) dataguardian serve --listen 0.0.0.0:8080 --data-dir /var/lib/dataguardian"
)

// envFlag is a string flag that falls back to an environment variable,
// then to its default.
type envFlag struct {
	name, env string
	value     string
}

// where names the flag and its variable, for messages that say what to set.
func (f *envFlag) where() string { return "--" + f.name + " or " + f.env }

// envFlags is a flag set whose flags fall back to environment variables.
type envFlags struct {
	*flag.FlagSet
	getenv func(string) string
	list   []*envFlag
}

// newEnvFlags returns the flag set of command name; withJSON adds the
// --json flag of the one-shot commands.
func (c *cli) newEnvFlags(name string, withJSON bool) (*envFlags, *bool) {
	var fs *flag.FlagSet
	var asJSON *bool
	if withJSON {
		fs, asJSON = c.flags(name)
	} else {
		fs = flag.NewFlagSet("dataguardian "+name, flag.ContinueOnError)
		fs.SetOutput(io.Discard) // errors and help are printed by parse
	}
	return &envFlags{FlagSet: fs, getenv: c.getenv}, asJSON
}

// Env defines a string flag falling back to env, then def; usage gets "(env ENV)".
func (fs *envFlags) Env(name, env, def, usage string) *envFlag {
	f := &envFlag{name: name, env: env}
	fs.StringVar(&f.value, name, def, usage+" (env "+env+")")
	fs.list = append(fs.list, f)
	return f
}

// parseEnv parses args like cli.parse, then sets every flag not given on the
// command line from its environment variable when that is set.
func (c *cli) parseEnv(fs *envFlags, args []string, names ...string) ([]string, error) {
	pos, err := c.parse(fs.FlagSet, args, names...)
	if err != nil {
		return nil, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, f := range fs.list {
		if v := fs.getenv(f.env); !given[f.name] && v != "" {
			f.value = v
		}
	}
	return pos, nil
}

// storeFlags select the engine's metadata store: serve and token share them.
type storeFlags struct {
	dataDir, databaseURL *envFlag
}

func registerStoreFlags(fs *envFlags) *storeFlags {
	return &storeFlags{
		dataDir: fs.Env("data-dir", envDataDir, defaultDataDir,
			"directory of the embedded defaults: SQLite metadata (dataguardian.db), secret key and the \"local\" storage (backups/)"),
		databaseURL: fs.Env("database-url", envDatabaseURL, "",
			"metadata database: postgres://USER:PASSWORD@HOST:5432/DB?sslmode=disable, or sqlite://PATH; empty means SQLite in the data directory. "+
				"Prefer the environment variable: a password in a flag is visible in ps"),
	}
}

// openEngine checks the data directory and opens the engine on the store
// sf selects, with the rest of cfg as given. Errors name the flag to fix.
func (c *cli) openEngine(ctx context.Context, sf *storeFlags, cfg engine.Config) (*engine.Engine, error) {
	dir := sf.dataDir.value
	if key := c.getenv(engine.SecretKeyEnv); key != "" { // checked before anything is written
		k, err := sealer.DecodeSecretKey(key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", engine.SecretKeyEnv, err)
		}
		c.secrets.add(key) // a valid key: 44 base64 characters, never a common word
		cfg.SecretKey = k
	}
	if err := checkWritableDir(dir); err != nil {
		return nil, fmt.Errorf("data directory %s: %w: set %s to a directory you can write", dir, err, sf.dataDir.where())
	}
	if u, err := url.Parse(sf.databaseURL.value); err == nil && u.User != nil {
		pw, _ := u.User.Password()
		c.secrets.add(pw)
	}
	cfg.DataDir, cfg.DatabaseURL = dir, sf.databaseURL.value
	e, err := dataguardian.New(ctx, cfg)
	if err != nil {
		fix := "check " + sf.dataDir.where()
		if sf.databaseURL.value != "" {
			fix = "check " + sf.databaseURL.where()
		}
		return nil, fmt.Errorf("open engine: %w; %s", err, fix)
	}
	return e, nil
}

// checkWritableDir creates dir if missing and checks that a file can be
// created in it.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// newLogger returns the server's logger on w.
func newLogger(w io.Writer, level, format *envFlag) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level.value)); err != nil {
		return nil, usagef("%s %q: use debug, info, warn or error", level.where(), level.value)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format.value {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("%s %q: use text or json", format.where(), format.value)
}

// serve runs the HTTP API and the engine's background work until ctx ends.
func (c *cli) serve(ctx context.Context, args []string) error {
	fs, _ := c.newEnvFlags("serve", false)
	listen := fs.Env("listen", envListen, defaultListen, "address of the HTTP API; port 0 picks a free port")
	sf := registerStoreFlags(fs)
	level := fs.Env("log-level", envLogLevel, "info", "log level: debug, info, warn or error")
	format := fs.Env("log-format", envLogFormat, "text", "log format: text or json")
	storageDir := fs.Env("storage-dir", envStorageDir, "",
		"directory of the \""+defaultStorageName+"\" storage location created on first start when none exists (default DATA_DIR/backups)")
	metricsAuth := fs.Env("metrics-auth", envMetricsAuth, "none",
		"who may read GET /metrics: none (public; job labels carry IDs, not names) or token "+
			"(a token holding the \""+httpapi.PermMetrics+"\" permission; job labels carry names too)")
	publicURL := fs.Env("public-url", envPublicURL, "",
		"URL at which clients reach this server, e.g. https://backup.example.com, named first in the OpenAPI document's "+
			"servers (default http://LISTEN when --listen names a host)")
	ageIdentity := fs.Env("age-identity", envAgeIdentity, "",
		"file of age secret keys (age-keygen output) restores and verifications decrypt encrypted backups with")
	shutdown := fs.Env("shutdown-timeout", envShutdownTimeout, defaultShutdownTimeout.String(),
		"on SIGINT/SIGTERM, how long running backups and HTTP requests may go on before they are cancelled")
	var allow pathList
	fs.Var(&allow, "allow-path", "a directory datasources (files, sqlite, sockets, certificates) and local storage locations "+
		"may use; repeat it for more (env "+envAllowPaths+", separated by \":\"). Default: the directory serve starts in. "+
		"The data directory is never usable, whatever the roots")
	if _, err := c.parseEnv(fs, args); err != nil {
		return err
	}
	// Refuse a bad admin token before anything is written; a good one is
	// long and random, so redacting it hides nothing else.
	adminToken := c.getenv(envAdminToken)
	if adminToken != "" && len(adminToken) < engine.MinTokenLength {
		return fmt.Errorf("%s has %d characters: use at least %d random characters (e.g. openssl rand -hex 32)",
			envAdminToken, len(adminToken), engine.MinTokenLength)
	}
	c.secrets.add(adminToken)
	log, err := newLogger(c.stderr, level, format)
	if err != nil {
		return err
	}
	metrics := map[string]httpapi.MetricsAccess{"none": httpapi.MetricsPublic, "token": httpapi.MetricsToken}
	if _, ok := metrics[metricsAuth.value]; !ok {
		return usagef("%s %q: use none or token", metricsAuth.where(), metricsAuth.value)
	}
	if u, err := url.Parse(publicURL.value); publicURL.value != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return usagef("%s %q: use an absolute http:// or https:// URL such as https://backup.example.com", publicURL.where(), publicURL.value)
	}
	ids, err := c.ageIdentities(ageIdentity.value, ageIdentity.where())
	if err != nil {
		return err
	}
	grace, err := time.ParseDuration(shutdown.value)
	if err != nil || grace <= 0 {
		return usagef("%s %q: use a positive duration such as 30s or 2m", shutdown.where(), shutdown.value)
	}

	dir := storageDir.value
	if dir == "" {
		dir = filepath.Join(sf.dataDir.value, "backups")
	}
	roots, err := c.allowedRoots(allow, dir, log)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", listen.value)
	if err != nil {
		return fmt.Errorf("%w: choose a free address with %s", err, listen.where())
	}
	defer ln.Close()
	e, err := c.openEngine(ctx, sf, engine.Config{Logger: log, AgeIdentities: ids, Worker: engine.WorkerOptions{ShutdownTimeout: grace},
		AllowedPaths: roots, AllowedPathsFlag: "--allow-path"})
	if err != nil {
		return err
	}
	defer e.Close()
	log.Info("metadata store opened", "store", e.Store().String(), "data_dir", sf.dataDir.value)
	log.Info("datasources and storage locations may use these directories", "allowed_paths", strings.Join(e.AllowedPaths(), string(os.PathListSeparator)))
	if err := ensureDefaultStorage(ctx, e, dir, log); err != nil {
		return fmt.Errorf("%w (check %s)", err, storageDir.where())
	}
	generated, err := httpapi.BootstrapAdminToken(ctx, e, adminToken)
	if err != nil {
		return fmt.Errorf("set up the admin token: %w (check %s)", err, envAdminToken)
	}
	if generated != "" {
		c.printGeneratedToken(generated, ln.Addr().String())
	}

	// Event streams never end on their own: Shutdown ends them first.
	streams, endStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer endStreams()
	api := httpapi.New(e, &httpapi.Options{Auth: httpapi.TokenAuth(e), Logger: log, Done: streams.Done(),
		Metrics: metrics[metricsAuth.value], PublicURL: servedAt(publicURL.value, ln.Addr())})
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(endStreams)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := e.Start(gctx); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve HTTP on %s: %w", ln.Addr(), err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down", "cause", context.Cause(gctx), "timeout", grace)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), grace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("HTTP requests still running at the shutdown deadline were cut off", "err", err)
			srv.Close()
		}
		return nil
	})
	fmt.Fprintf(c.stderr, "%s%s\n", readyPrefix, ln.Addr())
	if err := g.Wait(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// pathList is a repeatable flag of values (directories, keys).
type pathList []string

func (l *pathList) String() string { return strings.Join(*l, string(os.PathListSeparator)) }

func (l *pathList) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*l = append(*l, v)
	return nil
}

// allowedRoots returns the directories the API may point datasources and
// local storage locations at: --allow-path, else DG_ALLOW_PATHS, else the
// working directory; and always storageDir, which the operator chose. The
// working directory "/" is no default (it would allow every file): then
// only storageDir is allowed until --allow-path names more.
func (c *cli) allowedRoots(flagged pathList, storageDir string, log *slog.Logger) ([]string, error) {
	roots := []string(flagged)
	where := "--allow-path"
	if len(roots) == 0 {
		if env := c.getenv(envAllowPaths); env != "" {
			roots, where = filepath.SplitList(env), envAllowPaths
		}
	}
	if len(roots) == 0 {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("find the working directory (the default of --allow-path): %w: set --allow-path or %s", err, envAllowPaths)
		}
		if wd == string(filepath.Separator) {
			log.Warn("serve started in /, which is no default root: datasources may use no directory until --allow-path names one")
		} else {
			roots = []string{wd}
		}
	}
	out := make([]string, 0, len(roots)+1)
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil || r == "" || abs == string(filepath.Separator) {
			return nil, usagef("%s %q: name a directory below / (a root of / would open every file of this machine to the API)", where, r)
		}
		out = append(out, abs)
	}
	abs, err := filepath.Abs(storageDir)
	if err != nil {
		return nil, fmt.Errorf("resolve the storage directory %s: %w", storageDir, err)
	}
	return append(out, abs), nil
}

// ensureDefaultStorage creates the "local" storage location at dir when no
// storage location exists yet.
func ensureDefaultStorage(ctx context.Context, e *engine.Engine, dir string, log *slog.Logger) error {
	locs, err := e.Store().ListStorageLocations(ctx)
	if err != nil {
		return fmt.Errorf("list storage locations: %w", err)
	}
	if len(locs) > 0 {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolve storage directory %s: %w", dir, err)
	}
	loc := &engine.StorageLocation{Name: defaultStorageName, Type: "local", Config: map[string]string{"path": abs}}
	if err := e.CreateStorageLocation(ctx, loc); err != nil {
		return fmt.Errorf("create the default storage location: %w", err)
	}
	log.Info("created the default storage location", "name", loc.Name, "id", loc.ID, "path", loc.Config["path"])
	return nil
}

// printGeneratedToken shows a token created at first start, once, on
// stderr (never through the logger, which may ship logs elsewhere).
func (c *cli) printGeneratedToken(secret, addr string) {
	rule := strings.Repeat("-", 76)
	fmt.Fprintf(c.stderr, "%s\nNo API token existed, so DataGuardian created an admin token with every permission.\n"+
		"It is shown only this once; store it now:\n\n    %s%s\n\n"+
		"Use it as: curl -H \"Authorization: Bearer $TOKEN\" http://%s/api/datasources\n"+
		"Create tokens with fewer permissions with: dataguardian token create --name NAME --permissions read\n%s\n",
		rule, adminTokenLabel, secret, addr, rule)
}

// servedAt is the URL clients reach the server at: public when set, else
// http:// and the address it listens on when that names a host (not
// 0.0.0.0 or ::, which no client can use), else "".
func servedAt(public string, addr net.Addr) string {
	if public != "" {
		return public
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
		return "http://" + tcp.String()
	}
	return ""
}

// ageIdentities reads the age secret keys in the file at path (the flag's
// value, else DG_AGE_IDENTITY; "" with neither: none). Each key is
// redacted from the logs. where names the flag for errors.
func (c *cli) ageIdentities(path, where string) ([]age.Identity, error) {
	if path == "" {
		path = c.getenv(envAgeIdentity)
	}
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%s %s: %v: give the key file age-keygen wrote", where, path, err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			c.secrets.add(l)
		}
	}
	ids, err := manifest.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, usagef("%s %s: no age secret key in it (%v): give the key file age-keygen wrote", where, path, err)
	}
	return ids, nil
}
