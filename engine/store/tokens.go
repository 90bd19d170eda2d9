package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrInvalidToken reports an API token that is unknown, revoked or expired.
// Its message never includes the token's secret or name; it says which of
// those it was, for the server log: a client should be told the same thing
// in every case (httpapi.TokenAuth does), or the answer tells a guesser
// which secrets exist.
var ErrInvalidToken = errors.New("invalid API token")

// API token secrets: TokenPrefix followed by 43 base64url characters (256
// random bits). An imported secret (ImportAPIToken) needs at least
// MinTokenLength characters.
const (
	TokenPrefix    = "dgt_"
	MinTokenLength = 32
)

// tokenTouchInterval bounds how often AuthenticateAPIToken records a
// token's last use, so that authenticating is a read on most requests.
const tokenTouchInterval = time.Minute

// HashToken is how API token secrets are stored: hex SHA-256. Secrets are
// random (or at least MinTokenLength characters), so a fast hash does not
// make them guessable; the store never holds a secret.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateAPIToken stores a new token named name holding perms (the caller
// validates permission names: the engine stores them as given) and returns
// its secret, which is not kept anywhere: show it once. expiresAt nil means
// it does not expire.
func (s *Store) CreateAPIToken(ctx context.Context, name string, perms []string, expiresAt *time.Time) (string, *APIToken, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("generate API token: %w", err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	tok, err := s.ImportAPIToken(ctx, name, secret, perms, expiresAt)
	if err != nil {
		return "", nil, err
	}
	return secret, tok, nil
}

// ImportAPIToken stores a token whose secret the operator chose (for
// example DG_ADMIN_TOKEN). A secret shorter than MinTokenLength is refused
// with ErrInvalid; a secret already stored matches ErrAlreadyExists.
func (s *Store) ImportAPIToken(ctx context.Context, name, secret string, perms []string, expiresAt *time.Time) (*APIToken, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, fmt.Errorf("%w: token name is empty: give the token a name that says who uses it", ErrInvalid)
	}
	if len(secret) < MinTokenLength {
		return nil, fmt.Errorf("%w: token secret has %d characters: use at least %d random characters (e.g. openssl rand -hex 32)",
			ErrInvalid, len(secret), MinTokenLength)
	}
	now := s.clock()
	if expiresAt != nil && !expiresAt.After(now) {
		return nil, fmt.Errorf("%w: token expires_at %s is in the past: give a future time or none", ErrInvalid, expiresAt.Format(time.RFC3339))
	}
	tok := &APIToken{ID: uuid.NewString(), Name: name, TokenHash: HashToken(secret),
		Permissions: slices.Compact(slices.Sorted(slices.Values(perms))), CreatedAt: now, ExpiresAt: expiresAt}
	if tok.Permissions == nil {
		tok.Permissions = []string{}
	}
	exists, err := s.db.NewSelect().Model((*APIToken)(nil)).Where("token_hash = ?", tok.TokenHash).Exists(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up API token: %w", err)
	}
	if exists {
		return nil, fmt.Errorf("%w: this token secret is already stored", ErrAlreadyExists)
	}
	if _, err := s.db.NewInsert().Model(tok).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store API token: %w", err)
	}
	return tok, nil
}

// AuthenticateAPIToken returns the stored token whose secret is secret, or
// an error matching ErrInvalidToken when none is (or it expired; the error
// then names the token's ID, never its name or secret). It reads
// through the store's read pool, so a long write does not stall every
// request, and records the token's last use at most once a minute.
func (s *Store) AuthenticateAPIToken(ctx context.Context, secret string) (*APIToken, error) {
	if secret == "" {
		return nil, fmt.Errorf("%w: no token given", ErrInvalidToken)
	}
	tok := new(APIToken)
	err := s.read.NewSelect().Model(tok).Where("token_hash = ?", HashToken(secret)).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: unknown or revoked token", ErrInvalidToken)
	}
	if err != nil {
		return nil, fmt.Errorf("look up API token: %w", err)
	}
	now := s.clock()
	if err := tok.activeAt(now); err != nil {
		return nil, err
	}
	if tok.LastUsedAt == nil || now.Sub(*tok.LastUsedAt) >= tokenTouchInterval {
		tok.LastUsedAt = &now
		// A failed record is not a failed authentication: the next use records it.
		_, _ = s.db.NewUpdate().Model(tok).Column("last_used_at").WherePK().Exec(ctx)
	}
	return tok, nil
}

// SetAPITokenPermissions replaces the permissions of the stored token
// whose secret is secret (an operator's own token, such as DG_ADMIN_TOKEN,
// kept up to date with the permissions of a newer version); an unknown
// secret matches ErrNotFound.
func (s *Store) SetAPITokenPermissions(ctx context.Context, secret string, perms []string) error {
	tok := new(APIToken)
	err := s.db.NewSelect().Model(tok).Where("token_hash = ?", HashToken(secret)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("API token: %w", ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set API token permissions: %w", err)
	}
	tok.Permissions = slices.Compact(slices.Sorted(slices.Values(perms)))
	if _, err := s.db.NewUpdate().Model(tok).Column("permissions").WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("set API token permissions: %w", err)
	}
	return nil
}

// ListAPITokens returns every token, oldest first (never a secret).
func (s *Store) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	var toks []APIToken
	if err := s.db.NewSelect().Model(&toks).Order("created_at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return toks, nil
}

// activeAt returns an error matching ErrInvalidToken, naming the token's
// ID, when tok has expired at now.
func (tok *APIToken) activeAt(now time.Time) error {
	if tok.ExpiresAt != nil && !now.Before(*tok.ExpiresAt) {
		return fmt.Errorf("%w: token %s expired at %s", ErrInvalidToken, tok.ID, tok.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// ActiveAPIToken returns the token with id if it still works: an error
// matching ErrInvalidToken when it was revoked or has expired (for
// credentials derived from a token, such as a download link, which must
// stop working with it).
func (s *Store) ActiveAPIToken(ctx context.Context, id string) (*APIToken, error) {
	tok := new(APIToken)
	err := s.read.NewSelect().Model(tok).Where("id = ?", id).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: token %s was revoked", ErrInvalidToken, id)
	}
	if err != nil {
		return nil, fmt.Errorf("look up API token %s: %w", id, err)
	}
	if err := tok.activeAt(s.clock()); err != nil {
		return nil, err
	}
	return tok, nil
}

// GetAPIToken returns the token with id, or an error matching ErrNotFound.
func (s *Store) GetAPIToken(ctx context.Context, id string) (*APIToken, error) {
	tok := new(APIToken)
	err := s.db.NewSelect().Model(tok).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("API token %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get API token %s: %w", id, err)
	}
	return tok, nil
}

// DeleteAPIToken revokes the token with id at once: later requests with it
// fail with ErrInvalidToken. An unknown id matches ErrNotFound.
func (s *Store) DeleteAPIToken(ctx context.Context, id string) error {
	res, err := s.db.NewDelete().Model((*APIToken)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete API token %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("API token %s: %w", id, ErrNotFound)
	}
	return nil
}

// CountAPITokens returns how many tokens are stored.
func (s *Store) CountAPITokens(ctx context.Context) (int, error) {
	n, err := s.db.NewSelect().Model((*APIToken)(nil)).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count API tokens: %w", err)
	}
	return int(n), nil
}
