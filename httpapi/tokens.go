package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dataguardian/dataguardian/engine"
)

// registerTokens registers the operations on API tokens.
func registerTokens(add adder, h *handlers) {
	tags := []string{"API tokens"}
	add(huma.Operation{OperationID: "list-api-tokens", Method: http.MethodGet, Path: "/api/tokens",
		Summary: "List API tokens, oldest first (never their secrets)", Tags: tags},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listTokens) })
	add(huma.Operation{OperationID: "create-api-token", Method: http.MethodPost, Path: "/api/tokens",
		Summary: "Create an API token; its secret is in this response only",
		Description: "Only a hash of the secret is stored: keep the secret now, it cannot be shown again. " +
			"A token may only grant permissions it holds itself (403 naming those it lacks), and a token that " +
			"expires may only create tokens expiring no later (422 on `expires_at`).",
		Tags: tags, DefaultStatus: http.StatusCreated},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.createToken) })
	add(huma.Operation{OperationID: "get-current-api-token", Method: http.MethodGet, Path: "/api/tokens/me",
		Summary: "The token this request was authenticated with, and its permissions", Tags: tags},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.currentToken) })
	add(huma.Operation{OperationID: "delete-api-token", Method: http.MethodDelete, Path: "/api/tokens/{id}",
		Summary:     "Revoke an API token at once",
		Description: "Refused (409) for the last token holding tokens.admin, so that the API keeps an administrator.",
		Tags:        tags, DefaultStatus: http.StatusNoContent},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.deleteToken) })
}

// Permission is the name of a permission; its schema enumerates them.
type Permission string

// Schema implements huma.SchemaProvider: an enum of AllPermissions.
func (Permission) Schema(huma.Registry) *huma.Schema {
	s := &huma.Schema{Type: huma.TypeString, Description: "A permission"}
	for _, p := range AllPermissions {
		s.Enum = append(s.Enum, p)
	}
	return s
}

// APIToken describes an API token. Its secret is never part of it.
type APIToken struct {
	ID          string     `json:"id" doc:"Token ID"`
	Name        string     `json:"name" doc:"Who or what uses the token"`
	Permissions []string   `json:"permissions" doc:"What the token allows"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at" doc:"Last request made with it (recorded at most once a minute); null if never used"`
	ExpiresAt   *time.Time `json:"expires_at" doc:"When it stops working; null if never"`
}

func apiTokenOf(t *engine.APIToken) APIToken {
	return APIToken{ID: t.ID, Name: t.Name, Permissions: t.Permissions, CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt}
}

// APITokenCreate is the body of POST /api/tokens.
type APITokenCreate struct {
	Name        string       `json:"name" minLength:"1" maxLength:"200" doc:"Who or what will use the token" example:"backup-dashboard"`
	Permissions []Permission `json:"permissions" minItems:"1" doc:"What the token allows" example:"[\"read\"]"`
	ExpiresAt   *time.Time   `json:"expires_at,omitempty" doc:"When it stops working; omitted means never"`
}

// CreatedAPIToken is the answer of POST /api/tokens: the token and, this
// once, its secret.
type CreatedAPIToken struct {
	APIToken
	Secret string `json:"secret" doc:"The bearer token; shown only in this response"`
}

type tokensOutput struct {
	Body []APIToken
}

type tokenOutput struct {
	Body APIToken
}

type createTokenInput struct {
	Body APITokenCreate
}

type createdTokenOutput struct {
	Body CreatedAPIToken
}

func (h *handlers) listTokens(ctx context.Context, _ *struct{}) (*tokensOutput, error) {
	toks, err := h.e.Store().ListAPITokens(ctx)
	if err != nil {
		return nil, problem(h.log, "list-api-tokens", err)
	}
	out := &tokensOutput{Body: make([]APIToken, 0, len(toks))}
	for i := range toks {
		out.Body = append(out.Body, apiTokenOf(&toks[i]))
	}
	return out, nil
}

func (h *handlers) createToken(ctx context.Context, in *createTokenInput) (*createdTokenOutput, error) {
	const op = "create-api-token"
	perms := make([]string, len(in.Body.Permissions))
	for i, p := range in.Body.Permissions {
		perms[i] = string(p)
	}
	if err := mayCreate(ctx, perms, in.Body.ExpiresAt); err != nil {
		return nil, problem(h.log, op, err)
	}
	secret, tok, err := h.e.Store().CreateAPIToken(ctx, in.Body.Name, perms, in.Body.ExpiresAt)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	return &createdTokenOutput{Body: CreatedAPIToken{APIToken: apiTokenOf(tok), Secret: secret}}, nil
}

// mayCreate returns an error unless the caller of ctx may create a token
// holding perms and expiring at expiresAt (nil: never): a caller may not
// grant a permission it lacks (ErrForbidden, on body.permissions), and a
// token that expires may not create one that outlives it (ErrInvalid, on
// body.expires_at). A request carrying no Permissions (no Auth hook: the
// embedding service vouches for it) may create any token.
func mayCreate(ctx context.Context, perms []string, expiresAt *time.Time) error {
	p, ok := PermissionsFrom(ctx)
	if !ok {
		return nil
	}
	var lacks []string
	for _, perm := range perms {
		if !p.Has(perm) && !slices.Contains(lacks, perm) {
			lacks = append(lacks, perm)
		}
	}
	if len(lacks) > 0 {
		return inField("body.permissions", nil, fmt.Errorf("%w: a token may only grant permissions it holds itself, "+
			"and yours lacks %s: drop them, or ask an administrator whose token holds them", ErrForbidden, quoted(lacks, ", ")))
	}
	tok, ok := TokenFrom(ctx)
	if !ok || tok.ExpiresAt == nil {
		return nil
	}
	limit := tok.ExpiresAt.UTC().Format(time.RFC3339)
	switch {
	case expiresAt == nil:
		return inField("body.expires_at", nil, fmt.Errorf("%w: your token expires at %s, so a token you create must too: "+
			"set expires_at to %s or earlier", engine.ErrInvalid, limit, limit))
	case expiresAt.After(*tok.ExpiresAt):
		return inField("body.expires_at", expiresAt.UTC().Format(time.RFC3339), fmt.Errorf("%w: expires_at %s is after "+
			"your token expires (%s): set expires_at to %s or earlier", engine.ErrInvalid,
			expiresAt.UTC().Format(time.RFC3339), limit, limit))
	}
	return nil
}

func (h *handlers) currentToken(ctx context.Context, _ *struct{}) (*tokenOutput, error) {
	tok, ok := TokenFrom(ctx)
	if !ok {
		return nil, problem(h.log, "get-current-api-token",
			fmt.Errorf("this request was not authenticated with an API token: %w", engine.ErrNotFound))
	}
	return &tokenOutput{Body: apiTokenOf(tok)}, nil
}

func (h *handlers) deleteToken(ctx context.Context, in *idInput) (*struct{}, error) {
	const op = "delete-api-token"
	tok, err := h.e.Store().GetAPIToken(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	if slices.Contains(tok.Permissions, PermTokensAdmin) {
		toks, err := h.e.Store().ListAPITokens(ctx)
		if err != nil {
			return nil, problem(h.log, op, err)
		}
		admins := 0
		for _, t := range toks {
			if slices.Contains(t.Permissions, PermTokensAdmin) {
				admins++
			}
		}
		if admins <= 1 {
			return nil, problem(h.log, op, fmt.Errorf("%w: token %q is the last one holding %s: create another admin token first, "+
				"or mint one on the server with `dataguardian token create`", engine.ErrInUse, tok.Name, PermTokensAdmin))
		}
	}
	if err := h.e.Store().DeleteAPIToken(ctx, in.ID); err != nil {
		return nil, problem(h.log, op, err)
	}
	return nil, nil
}
