package store

import (
	"errors"
	"testing"
	"time"
)

// TestActiveAPIToken: a token works until it expires or is revoked, and
// then answers ErrInvalidToken naming its ID; so does AuthenticateAPIToken.
func TestActiveAPIToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		now := time.Now().UTC()
		s.SetClock(func() time.Time { return now })
		exp := now.Add(time.Hour)
		secret, tok, err := s.CreateAPIToken(ctx, "t", []string{"read"}, &exp)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.ActiveAPIToken(ctx, tok.ID); err != nil || got.Name != "t" {
			t.Fatalf("a live token: %+v, %v", got, err)
		}
		now = exp
		for what, err := range map[string]error{
			"active":       func() error { _, err := s.ActiveAPIToken(ctx, tok.ID); return err }(),
			"authenticate": func() error { _, err := s.AuthenticateAPIToken(ctx, secret); return err }(),
		} {
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("%s, expired: %v", what, err)
			}
		}
		now = exp.Add(-time.Minute)
		if err := s.DeleteAPIToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ActiveAPIToken(ctx, tok.ID); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("a revoked token: %v", err)
		}
	})
}
