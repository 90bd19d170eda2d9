package engine

import (
	"context"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/defaults"
	"github.com/dataguardian/dataguardian/engine/internal/storetest"
	"github.com/dataguardian/dataguardian/internal/testcheck"
)

// newEngine is New with the built-in drivers and storage where cfg leaves
// them out, as the root package's New does.
func newEngine(ctx context.Context, cfg Config) (*Engine, error) {
	defaults.Fill(&cfg.Drivers, &cfg.StorageOpeners)
	return New(ctx, cfg)
}

// Stores for the engine's white-box tests (see storetest).
var (
	sqliteTestURL  = storetest.SQLiteURL
	openTestStore  = storetest.Open
	forEachStore   = storetest.ForEach
	writeRunFolder = storetest.WriteRunFolder
)

// ts is a fixed UTC time with microsecond precision, as the store keeps it.
func ts(minute int) time.Time {
	return time.Date(2025, 2, 13, 6, minute, 1, 123456000, time.UTC)
}

func ptr[T any](v T) *T { return &v }

// mustNoErr stops the test when err is not nil (testcheck.NoErr).
var mustNoErr = testcheck.NoErr

// same fails t unless got equals want field by field (testcheck.Same).
func same[T any](t *testing.T, what string, got, want *T) {
	t.Helper()
	testcheck.Same(t, what, got, want)
}

// second is the error of a call returning a value and an error.
func second[T any](_ T, err error) error { return err }
