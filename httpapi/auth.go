package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dataguardian/dataguardian/engine"
)

// Permissions an API token (or an Options.Auth hook) grants. Every
// operation under /api needs one of them; the OpenAPI document lists it in
// the operation's security requirement as the scope of the "bearer" scheme.
const (
	// PermRead allows every GET under /api except downloads, and the event stream.
	PermRead = "read"
	// PermWrite allows creating, changing and deleting datasources, storage
	// locations, backup and sync jobs, and notifications.
	PermWrite = "write"
	// PermRun allows running backup and sync jobs now and retrying uploads.
	PermRun = "backups.run"
	// PermRestore allows POST /api/backups/{executionId}/restore and
	// recording a restore done by hand.
	PermRestore = "backups.restore"
	// PermRestoreVerify allows that restore with verification_mode=true.
	PermRestoreVerify = "backups.restore_verify"
	// PermDownload allows downloading a backup's files (the whole database).
	PermDownload = "backups.download"
	// PermSettingsWrite allows changing notification channels and templates.
	PermSettingsWrite = "settings.write"
	// PermTokensAdmin allows listing, creating and revoking API tokens.
	// A token may only create tokens holding some of its own permissions
	// and expiring no later than itself.
	PermTokensAdmin = "tokens.admin"
	// PermMetrics allows GET /metrics when Options.Metrics is MetricsToken
	// (with MetricsPublic, the default, /metrics needs no token).
	PermMetrics = "metrics"
)

// AllPermissions lists every permission, as an admin token holds them.
var AllPermissions = []string{PermRead, PermWrite, PermRun, PermRestore, PermRestoreVerify,
	PermDownload, PermSettingsWrite, PermTokensAdmin, PermMetrics}

// securityScheme is the name of the bearer token scheme in the OpenAPI document.
const securityScheme = "bearer"

// PermissionsExtension is the OpenAPI extension of an operation that
// lists the permissions it accepts (any one of them allows it; an empty
// list: any valid token). A public operation has none.
const PermissionsExtension = "x-permissions"

// operationPermissions is the access policy of every /api operation whose
// permission is not the one its method implies (GET: PermRead, any other
// method: PermWrite). An empty list means any valid token. Several
// permissions are alternatives; the handler checks the exact one.
var operationPermissions = map[string][]string{
	"run-backup-job":                       {PermRun},
	"run-sync-job":                         {PermRun},
	"retry-execution-upload":               {PermRun},
	"restore-backup":                       {PermRestore, PermRestoreVerify},
	"mark-execution-restored":              {PermRestore},
	"download-execution":                   {PermDownload},
	"create-download-link":                 {PermDownload},
	"put-notification-settings":            {PermSettingsWrite},
	"create-notification-template":         {PermSettingsWrite},
	"update-notification-template":         {PermSettingsWrite},
	"create-notification-template-version": {PermSettingsWrite},
	"list-api-tokens":                      {PermTokensAdmin},
	"create-api-token":                     {PermTokensAdmin},
	"delete-api-token":                     {PermTokensAdmin},
	"get-current-api-token":                {},
}

// permissionsOf returns the permissions op needs (any one of them), and
// false for a public operation: one outside /api, except GET /metrics
// when metrics need a token.
func (h *handlers) permissionsOf(op *huma.Operation) ([]string, bool) {
	if op.Path == "/metrics" && h.metrics == MetricsToken {
		return []string{PermMetrics}, true
	}
	if op.Path != "/api" && !strings.HasPrefix(op.Path, "/api/") {
		return nil, false
	}
	if perms, ok := operationPermissions[op.OperationID]; ok {
		return perms, true
	}
	if op.Method == http.MethodGet {
		return []string{PermRead}, true
	}
	return []string{PermWrite}, true
}

// secure documents op's permission (security requirement and a line of its
// description) and, for a huma operation, adds the middleware enforcing it.
//
// In the document, a public operation has an empty security requirement
// list; any other needs the bearer scheme (without scopes, which OpenAPI
// defines for OAuth2 only) and lists the permissions it accepts in
// PermissionsExtension.
func (h *handlers) secure(api huma.API, op *huma.Operation) {
	perms, ok := h.permissionsOf(op)
	if !ok {
		op.Security = []map[string][]string{}
		op.Description = strings.TrimSpace(op.Description + "\n\n" + permissionSentence(nil, true))
		return
	}
	op.Security = []map[string][]string{{securityScheme: {}}}
	if op.Extensions == nil {
		op.Extensions = map[string]any{}
	}
	op.Extensions[PermissionsExtension] = append([]string{}, perms...)
	op.Description = strings.TrimSpace(op.Description + "\n\n" + permissionSentence(perms, false)) // docs.go
	op.Middlewares = append(op.Middlewares, func(ctx huma.Context, next func(huma.Context)) {
		if err := h.authorize(ctx.Context(), perms...); err != nil {
			_ = huma.WriteErr(api, ctx, http.StatusForbidden, message(err))
			return
		}
		next(ctx)
	})
}

// Permissions are what the caller of a request may do.
type Permissions interface {
	// Has reports whether the caller holds perm (e.g. PermRestoreVerify).
	Has(perm string) bool
}

// PermissionSet is a Permissions holding a fixed list of permissions.
type PermissionSet []string

// Has implements Permissions.
func (s PermissionSet) Has(perm string) bool { return slices.Contains(s, perm) }

type permissionsKey struct{}

// WithPermissions returns ctx carrying p, the caller's permissions, which
// every operation under /api checks (see the Perm constants).
//
// An Options.Auth hook attaches them to the request it authenticated:
//
//	*r = *r.WithContext(httpapi.WithPermissions(r.Context(), perms))
//
// (a service mounting the API behind its own middleware does the same
// before calling the handler). A request that carries no Permissions is
// allowed everything when no Auth hook is configured: protecting /api is
// then the embedding service's responsibility. With an Auth hook, a request
// without Permissions is refused (fail closed), so a hook attaches them to
// every request it lets through, an empty PermissionSet for "none".
func WithPermissions(ctx context.Context, p Permissions) context.Context {
	return context.WithValue(ctx, permissionsKey{}, p)
}

// PermissionsFrom returns the Permissions WithPermissions attached to ctx.
func PermissionsFrom(ctx context.Context) (Permissions, bool) {
	p, ok := ctx.Value(permissionsKey{}).(Permissions)
	return p, ok && p != nil
}

// authorize returns an error matching ErrForbidden unless ctx holds one of
// perms (any authenticated caller when perms is empty).
func (h *handlers) authorize(ctx context.Context, perms ...string) error {
	p, ok := PermissionsFrom(ctx)
	if !ok {
		if !h.auth {
			return nil // no Auth hook: the embedding service protects /api
		}
		return fmt.Errorf("%w: the request carries no permissions; the server's Auth hook must attach them", ErrForbidden)
	}
	if len(perms) == 0 || slices.ContainsFunc(perms, p.Has) {
		return nil
	}
	return fmt.Errorf("%w: this operation needs permission %s; ask an administrator for a token that holds it",
		ErrForbidden, quoted(perms, " or "))
}

// quoted lists perms, each in double quotes, separated by sep.
func quoted(perms []string, sep string) string {
	q := make([]string, len(perms))
	for i, p := range perms {
		q[i] = strconv.Quote(p)
	}
	return strings.Join(q, sep)
}

// require wraps a plain handler under /api (one that is not a huma
// operation) with the permission check of authorize.
func (h *handlers) require(perm string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.authorize(r.Context(), perm); err != nil {
			writeProblem(w, problem(h.log, r.URL.Path, err))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requirePermission is authorize for one permission, with why naming what
// needs it (a handler whose permission depends on the request body).
func (h *handlers) requirePermission(ctx context.Context, perm, why string) error {
	if err := h.authorize(ctx); err != nil {
		return err
	}
	if p, ok := PermissionsFrom(ctx); ok && !p.Has(perm) {
		return fmt.Errorf("%w: %s needs permission %q; ask an administrator for a token that holds it", ErrForbidden, why, perm)
	}
	return nil
}

// ---------------------------------------------------------------------------
// API tokens.

type tokenKey struct{}

// errAuthStore marks an Auth failure that is the server's (the token store
// did not answer): 500, not 401.
var errAuthStore = errors.New("authentication unavailable")

// TokenFrom returns the API token TokenAuth authenticated the request of
// ctx with.
func TokenFrom(ctx context.Context) (*engine.APIToken, bool) {
	t, ok := ctx.Value(tokenKey{}).(*engine.APIToken)
	return t, ok
}

// invalidTokenMessage is what a client presenting an unknown, revoked or
// expired token is told, whichever it was.
const invalidTokenMessage = "invalid or expired API token: send a valid token as \"Authorization: Bearer <token>\""

// invalidTokenError is the 401 of a presented but invalid token. Its text
// is invalidTokenMessage whatever the cause, so that the answer does not
// tell a guesser which secrets exist or name a token; the cause (which
// never holds the secret) is only logged.
type invalidTokenError struct {
	cause   error
	message string // "" means invalidTokenMessage
}

func (e *invalidTokenError) Error() string {
	if e.message != "" {
		return ErrUnauthorized.Error() + ": " + e.message
	}
	return ErrUnauthorized.Error() + ": " + invalidTokenMessage
}
func (e *invalidTokenError) Unwrap() []error { return []error{ErrUnauthorized, e.cause} }

// TokenAuth returns an Options.Auth hook that accepts requests carrying
// "Authorization: Bearer <secret>" of a token stored in e (see
// CreateToken) and attaches the token's permissions and the token itself
// (TokenFrom) to the request. Every unknown, revoked or expired token gets
// the same 401; New logs which it was.
func TokenAuth(e *engine.Engine) func(r *http.Request) error {
	return func(r *http.Request) error {
		secret, err := bearer(r)
		if err != nil {
			return err
		}
		tok, err := e.Store().AuthenticateAPIToken(r.Context(), secret)
		if errors.Is(err, engine.ErrInvalidToken) {
			return &invalidTokenError{cause: err}
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errAuthStore, err) // 500, logged
		}
		ctx := WithPermissions(r.Context(), PermissionSet(tok.Permissions))
		*r = *r.WithContext(context.WithValue(ctx, tokenKey{}, tok))
		return nil
	}
}

// ticketAuth authenticates a download through the ticket of a download
// link (create-download-link) in place of a token: GET or HEAD
// /api/executions/{id}/download?ticket=… without an Authorization header.
// It reports false for any other request (Auth decides). A valid ticket
// whose holder token still exists, has not expired and holds PermDownload
// attaches PermDownload alone; anything else is the 401 of an invalid
// token, counted by the AuthLimiter like one.
func ticketAuth(e *engine.Engine, r *http.Request) (bool, error) {
	tk := r.URL.Query().Get("ticket")
	if tk == "" || r.Header.Get("Authorization") != "" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false, nil
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/api/executions/")
	id, ok2 := strings.CutSuffix(id, "/download")
	if !ok || !ok2 || id == "" || strings.Contains(id, "/") {
		return false, nil
	}
	refuse := func(cause error) (bool, error) {
		return true, &invalidTokenError{cause: cause,
			message: "invalid or expired download link: ask for a new one (POST /api/executions/{id}/download-link)"}
	}
	holder, err := e.CheckDownloadTicket(tk, id)
	if err != nil {
		return refuse(err)
	}
	ctx := WithPermissions(r.Context(), PermissionSet{PermDownload})
	if holder != "" {
		tok, err := e.Store().ActiveAPIToken(r.Context(), holder)
		switch {
		case errors.Is(err, engine.ErrInvalidToken):
			return refuse(fmt.Errorf("%w: the token that made the link: %w", engine.ErrInvalidTicket, err))
		case err != nil:
			return true, fmt.Errorf("%w: %w", errAuthStore, err)
		case !slices.Contains(tok.Permissions, PermDownload):
			return refuse(fmt.Errorf("%w: the token %s that made the link no longer holds %s", engine.ErrInvalidTicket, holder, PermDownload))
		}
		ctx = context.WithValue(ctx, tokenKey{}, tok)
	}
	*r = *r.WithContext(ctx)
	return true, nil
}

// bearer returns the token of r's Authorization header.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", fmt.Errorf("%w: no API token: send \"Authorization: Bearer <token>\"", ErrUnauthorized)
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return "", fmt.Errorf("%w: the Authorization header is not \"Bearer <token>\"", ErrUnauthorized)
	}
	return strings.TrimSpace(secret), nil
}

// CheckPermissions returns an error matching engine.ErrInvalid naming the
// first unknown permission in perms and listing the valid ones.
func CheckPermissions(perms []string) error {
	for _, p := range perms {
		if !slices.Contains(AllPermissions, p) {
			return fmt.Errorf("%w: unknown permission %q: use %s", engine.ErrInvalid, p, strings.Join(AllPermissions, ", "))
		}
	}
	return nil
}

// CreateToken stores a new API token named name with perms (checked with
// CheckPermissions) and returns its secret: it is shown once and not kept.
func CreateToken(ctx context.Context, e *engine.Engine, name string, perms []string) (string, error) {
	if err := CheckPermissions(perms); err != nil {
		return "", err
	}
	secret, _, err := e.Store().CreateAPIToken(ctx, name, perms, nil)
	return secret, err
}

// BootstrapAdminToken makes sure someone can use the API. With secret
// (DG_ADMIN_TOKEN, say) it stores that secret as a token holding every
// permission (or gives every permission to the token stored with it), and
// returns "". Without one, when no token exists yet, it creates an admin
// token and returns its secret, for the caller to show once; otherwise it
// returns "".
func BootstrapAdminToken(ctx context.Context, e *engine.Engine, secret string) (string, error) {
	if secret != "" {
		_, err := e.Store().ImportAPIToken(ctx, "admin (DG_ADMIN_TOKEN)", secret, AllPermissions, nil)
		if errors.Is(err, engine.ErrAlreadyExists) {
			// Stored by an earlier start: it holds every permission of this
			// version too (metrics, say, which older versions lacked).
			err = e.Store().SetAPITokenPermissions(ctx, secret, AllPermissions)
		}
		return "", err
	}
	n, err := e.Store().CountAPITokens(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	secret, _, err = e.Store().CreateAPIToken(ctx, "admin", AllPermissions, nil)
	return secret, err
}
