package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/dataguardian/dataguardian/console"
	"github.com/dataguardian/dataguardian/engine"
)

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// Options configure the API. A nil *Options means every default.
type Options struct {
	// Logger receives server errors; nil means slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes bounds every request body (413 beyond it); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Auth, when set, is called for every request under /api before its
	// handler; a non-nil error answers 401 (403 if it matches ErrForbidden)
	// as problem JSON. It attaches the caller's permissions to the request
	// (see WithPermissions), which each operation checks. TokenAuth is the
	// hook of DataGuardian's own API tokens. nil means no authentication:
	// protecting /api is then the embedding service's responsibility.
	Auth func(r *http.Request) error
	// Title and Version name the OpenAPI document; "" means
	// "DataGuardian API" and the version of the module built into the
	// running program ("dev" when it has none, as with go run).
	Title, Version string
	// PublicURL is the absolute URL at which clients reach the API (the
	// URL of BasePath), e.g. "https://backup.example.com/dataguardian": the
	// OpenAPI document lists it first among its servers, so a client
	// generated from it, or the document read elsewhere, knows the host.
	// "" lists only BasePath (or "/"), relative to the document's own URL.
	PublicURL string
	// BasePath is the path prefix under which the embedding service
	// mounts the handler (with http.StripPrefix), e.g. "/dataguardian": the
	// OpenAPI document names it as its server, so generated clients and
	// the /docs page find the API. "" means the API is at the root.
	BasePath string
	// Done, when set, ends the open event streams (GET /api/events) once
	// it is closed. http.Server.Shutdown waits for every request and a
	// stream never ends on its own: close Done when shutting down, e.g.
	// from http.Server.RegisterOnShutdown. nil: streams end with their
	// client.
	Done <-chan struct{}
	// AuthFailureLimit is how many failed authentications (401s of Auth)
	// a client address may have within AuthFailureWindow: after that,
	// every request Auth guards from that address (all of /api, and
	// /metrics with MetricsToken) answers 429 with Retry-After until the
	// window has passed, even with a valid token. 0 means
	// DefaultAuthFailureLimit (20); a negative value turns the limit off.
	// Without Auth nothing is limited. See AuthLimiter.
	AuthFailureLimit int
	// AuthFailureWindow is the window of AuthFailureLimit; 0 means
	// DefaultAuthFailureWindow (1 minute), a negative value turns the
	// limit off.
	AuthFailureWindow time.Duration
	// ClientAddr names the client of a request for AuthFailureLimit; nil
	// means the host of r.RemoteAddr, an IPv6 address by its /64.
	// Forwarding headers are not trusted by default: behind a reverse
	// proxy every client has the proxy's address, so return the address
	// the proxy reports, and only if the proxy overwrites what clients send.
	ClientAddr func(r *http.Request) string
	// Metrics selects who may read GET /metrics: MetricsPublic (the zero
	// value: no token; job labels carry IDs, never names) or MetricsToken
	// (a token holding PermMetrics, checked through Auth like /api; job
	// labels carry names too).
	Metrics MetricsAccess
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Title == "" {
		c.Title = "DataGuardian API"
	}
	if c.Version == "" {
		c.Version = buildVersion()
	}
	if c.AuthFailureLimit == 0 {
		c.AuthFailureLimit = DefaultAuthFailureLimit
	}
	if c.AuthFailureWindow == 0 {
		c.AuthFailureWindow = DefaultAuthFailureWindow
	}
	if c.ClientAddr == nil {
		c.ClientAddr = clientAddr
	}
	return c
}

// Config returns the huma configuration New uses: no $schema links in
// bodies (responses keep the specification's shapes), the document's info
// (license, contact, the build's version), servers, tags and security
// scheme, and neither huma's documents nor its docs page (OpenAPIPath and
// DocsPath "": huma's 3.0 downgrade is not valid OpenAPI 3.0, and its docs
// page loads its UI from a CDN). New serves OpenAPIHandler (the 3.1
// document at /openapi.json and .yaml, a valid 3.0 one at
// /openapi-3.0.json and .yaml) and DocsHandler at /docs instead: mount
// both yourself when you call Register on your own API.
func Config(opts *Options) huma.Config {
	o := opts.withDefaults()
	cfg := huma.DefaultConfig(o.Title, o.Version)
	cfg.OpenAPIPath = ""
	cfg.DocsPath = ""
	cfg.Info.License = &huma.License{Name: "MIT", URL: "https://github.com/dataguardian/dataguardian/blob/main/LICENSE"}
	cfg.Info.Contact = &huma.Contact{Name: "DataGuardian", URL: "https://github.com/dataguardian/dataguardian"}
	cfg.Tags = documentTags
	cfg.CreateHooks = nil
	cfg.Transformers = append(cfg.Transformers, redactProblem)
	cfg.Info.Description = "Backups, restores and health of datasources. Errors are RFC 9457 problem JSON.\n\n" +
		"Everything under /api needs an API token sent as `Authorization: Bearer <token>`; each operation " +
		"names the permission it needs (401 without a valid token, 403 without the permission; 429 with " +
		"Retry-After once an address has sent too many invalid tokens). " + publicPaths(o.Metrics)
	cfg.Servers = nil
	if o.PublicURL != "" {
		cfg.Servers = append(cfg.Servers, &huma.Server{URL: strings.TrimSuffix(o.PublicURL, "/"), Description: "This server"})
	}
	base := strings.TrimSuffix(o.BasePath, "/")
	if base == "" {
		base = "/"
	}
	cfg.Servers = append(cfg.Servers, &huma.Server{URL: base, Description: "Relative to where this document is served"})
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{securityScheme: {
		Type: "http", Scheme: "bearer",
		Description: "An API token (GET/POST /api/tokens). The permissions an operation accepts are its `x-permissions` " +
			"(any one of them allows it) and the \"Needs permission\" line of its description.",
	}}
	return cfg
}

// New returns the API over e as an http.Handler to mount at the root of a
// mux (its paths are absolute: /health, /api/..., /openapi.json, /docs),
// with the web console (package console) at / and /assets/.
// With Options.Auth, every request under /api (and GET /metrics with
// MetricsToken) is authenticated first, behind the AuthLimiter of opts.
func New(e *engine.Engine, opts *Options) http.Handler {
	o := opts.withDefaults()
	mux := http.NewServeMux()
	api := humago.New(mux, Config(opts))
	Register(api, e, opts)
	MountObservability(mux, e, opts)
	spec := OpenAPIHandler(api) // openapi.go: public, the documents
	for _, p := range OpenAPIPaths {
		mux.Handle("GET "+p, spec)
	}
	mux.Handle("GET /docs", DocsHandler(api)) // docs.go: public, like /openapi.json
	ui := console.Handler()                   // the web console: public files, it calls the API with the user's token
	mux.Handle("GET /{$}", ui)
	mux.Handle("GET /assets/", ui)
	if o.Auth == nil {
		return mux
	}
	limiter := NewAuthLimiter(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		guarded := r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/") ||
			(r.URL.Path == "/metrics" && o.Metrics == MetricsToken)
		if !guarded {
			mux.ServeHTTP(w, r)
			return
		}
		if wait, blocked := limiter.Blocked(r); blocked {
			w.Header().Set("Retry-After", retryAfter(wait))
			writeProblem(w, huma.NewError(http.StatusTooManyRequests, "too many failed authentications from your address: "+
				"retry after "+retryAfter(wait)+" s with a valid token"))
			return
		}
		ticketed, err := ticketAuth(e, r) // auth.go: a download link's ticket in place of a token
		if !ticketed {
			err = o.Auth(r)
		}
		if err != nil {
			err = authError(err)
			if errors.Is(err, ErrUnauthorized) {
				limiter.Failed(r)
				w.Header().Set("WWW-Authenticate", `Bearer realm="DataGuardian"`)
				var ite *invalidTokenError
				if errors.As(err, &ite) {
					o.Logger.Info("API token refused", "client", o.ClientAddr(r), "method", r.Method,
						"path", r.URL.Path, "reason", ite.cause)
				}
			}
			writeProblem(w, problem(o.Logger, "auth", err))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// adder registers one operation with the API's shared settings.
type adder func(op huma.Operation, register func(huma.API, huma.Operation))

// Register adds every operation of the API over e to api; New calls it,
// tests call it on a humatest API. A service that calls it on its own huma
// API mounts DocsHandler(api) for the /docs page (and MountObservability).
func Register(api huma.API, e *engine.Engine, opts *Options) {
	o := opts.withDefaults()
	h := &handlers{e: e, log: o.Logger, auth: o.Auth != nil, metrics: o.Metrics, basePath: o.BasePath}
	var add adder = func(op huma.Operation, register func(huma.API, huma.Operation)) {
		op.MaxBodyBytes = o.MaxBodyBytes
		h.secure(api, &op)
		op.Middlewares = append(op.Middlewares, checkText(api), keepURL) // text.go: no NUL, valid UTF-8; resources.go: for NextPage
		register(api, op)
		documentProblems(api, op.Method, op.Path) // openapi.go
	}
	registerResources(add, h)     // resources.go: storage locations, backup jobs, sync jobs, executions
	registerBackups(add, h)       // backups.go: the Backups tab, restores, notifications, templates
	registerObservability(add, h) // observability.go: /api/health*, dashboard, events, metrics
	registerTokens(add, h)        // tokens.go: API tokens
	add(huma.Operation{OperationID: "get-health", Method: http.MethodGet, Path: "/health",
		Summary: "Liveness and metadata store reachability (public)", Tags: []string{"Health"},
		Description: "200 while the server runs and its metadata store answers; 503, with the same body, when the store does not."},
		func(a huma.API, op huma.Operation) {
			op.Responses = map[string]*huma.Response{"503": {Description: "The metadata store does not answer",
				Content: map[string]*huma.MediaType{"application/json": {
					Schema: a.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[Health](), true, "")}}}}
			huma.Register(a, op, h.health)
		})

	add(huma.Operation{OperationID: "list-datasources", Method: http.MethodGet, Path: "/api/datasources",
		Summary: "List datasources with their connection status", Tags: []string{"Datasources"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listDatasources) })
	add(huma.Operation{OperationID: "create-datasource", Method: http.MethodPost, Path: "/api/datasources",
		Summary: "Register a datasource (the password is write-only)", Tags: []string{"Datasources"},
		DefaultStatus: http.StatusCreated},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.createDatasource) })
	add(huma.Operation{OperationID: "get-datasource", Method: http.MethodGet, Path: "/api/datasources/{id}",
		Summary: "Get one datasource", Tags: []string{"Datasources"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.getDatasource) })
	add(huma.Operation{OperationID: "list-datasource-health-checks", Method: http.MethodGet,
		Path: "/api/datasources/{id}/health-checks", Summary: "List a datasource's health checks, newest first",
		Tags: []string{"Datasources", "Health"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listHealthChecks) })
	add(huma.Operation{OperationID: "check-datasource", Method: http.MethodPost,
		Path: "/api/datasources/{id}/health-check", Summary: "Run a health check of a datasource now",
		Tags: []string{"Datasources", "Health"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.checkDatasource) })

	add(huma.Operation{OperationID: "list-backup-job-executions", Method: http.MethodGet,
		Path: "/api/backup-jobs/{id}/executions", Summary: "List a backup job's executions, newest first",
		Tags: []string{"Backup jobs", "Executions"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listJobExecutions) })
	add(huma.Operation{OperationID: "run-backup-job", Method: http.MethodPost,
		Path: "/api/backup-jobs/{id}/run", Summary: "Queue a backup of a job now",
		Description: "Queues a backup of the job, due now, and answers 202 with its execution (status queued). " +
			"A job has at most one queued backup: when one is already queued (an earlier run now, a due schedule, " +
			"a retry waiting for its delay), nothing new is queued and the answer is 202 with that execution, " +
			"made due now; so repeated or concurrent requests name the same execution. " +
			"Watch it with GET /api/executions/{id} or the event stream.",
		Tags: []string{"Backup jobs", "Executions"}, DefaultStatus: http.StatusAccepted},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.runBackupJob) })
}

type handlers struct {
	e        *engine.Engine
	log      *slog.Logger
	auth     bool          // an Auth hook authenticates requests: permissions must be attached
	metrics  MetricsAccess // who may read /metrics
	basePath string        // Options.BasePath, for links
}
