package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
)

// TestStorageSecretsSealed: a storage location's secrets are stored sealed
// (neither the row nor the database file holds them), reach the opener in
// clear, are kept by an update that leaves them out while the location
// points where it did, and are never sent to a new destination: an update
// that moves it without giving the secret again is refused naming it.
func TestStorageSecretsSealed(t *testing.T) {
	const secret = "s3cr3t-Access-Key-value-9f8e7d"
	var mu sync.Mutex
	var seen []map[string]string
	dir := t.TempDir()
	e := newSQLiteEngine(t, Config{StorageOpeners: map[string]StorageOpener{"remote": func(_ context.Context, loc *StorageLocation) (storage.Storage, error) {
		mu.Lock()
		seen = append(seen, loc.Config)
		mu.Unlock()
		return local.New(dir)
	}}})
	ctx := t.Context()
	last := func() map[string]string { mu.Lock(); defer mu.Unlock(); return seen[len(seen)-1] }

	loc := &StorageLocation{Name: "offsite", Type: "remote", Config: map[string]string{
		"endpoint": "https://a.example", "bucket": "b", "secret_access_key": secret}}
	mustNoErr(t, "create", e.CreateStorageLocation(ctx, loc))
	if last()["secret_access_key"] != secret {
		t.Fatalf("the opener got %q", last()["secret_access_key"])
	}
	stored, err := e.store.GetStorageLocation(ctx, loc.ID)
	mustNoErr(t, "get", err)
	if v := stored.Config["secret_access_key"]; !strings.HasPrefix(v, sealedPrefix) || strings.Contains(v, secret) {
		t.Fatalf("stored secret %q", v)
	}
	if _, err := e.openStorage(ctx, stored); err != nil || last()["secret_access_key"] != secret {
		t.Fatalf("open the stored location: %v, secret %q", err, last()["secret_access_key"])
	}
	db := strings.TrimPrefix(e.cfg.DatabaseURL, "sqlite://")
	matches, _ := filepath.Glob(db + "*") // the database, its WAL and shared memory
	for _, m := range matches {
		if b, err := os.ReadFile(m); err != nil || bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the secret in clear (%v)", m, err)
		}
	}
	if len(matches) == 0 {
		t.Fatalf("no database file at %s", db)
	}

	// Renamed, same destination, secret left out: kept.
	upd := &StorageLocation{ID: loc.ID, Name: "offsite-2", Type: "remote", Config: map[string]string{
		"endpoint": "https://a.example", "bucket": "b"}}
	mustNoErr(t, "rename", e.UpdateStorageLocation(ctx, upd))
	if last()["secret_access_key"] != secret {
		t.Fatalf("after a rename the opener got %q", last()["secret_access_key"])
	}
	// Moved, secret left out: refused, naming it.
	moved := &StorageLocation{ID: loc.ID, Name: "offsite-2", Type: "remote", Config: map[string]string{
		"endpoint": "https://attacker.example", "bucket": "b"}}
	err = e.UpdateStorageLocation(ctx, moved)
	var fe *store.FieldError
	if !errors.As(err, &fe) || fe.Field != "config.secret_access_key" {
		t.Fatalf("moved without the secret: %v", err)
	}
	if got := last()["endpoint"]; got != "https://a.example" {
		t.Fatalf("the opener was called for %s", got)
	}
	// Moved with the secret given again: fine.
	moved.Config["secret_access_key"] = "another-secret"
	mustNoErr(t, "move with a new secret", e.UpdateStorageLocation(ctx, moved))
	if last()["secret_access_key"] != "another-secret" {
		t.Fatalf("the opener got %q", last()["secret_access_key"])
	}
}
