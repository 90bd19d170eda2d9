package httpapi

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/dataguardian/dataguardian"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/humatest"

	"github.com/dataguardian/dataguardian/engine"
)

// TestOperationPermissionsNameOperations: every entry of the access policy
// names a registered operation, so renaming an operation cannot silently
// drop its permission to the method's default.
func TestOperationPermissionsNameOperations(t *testing.T) {
	e, err := dataguardian.New(context.Background(), engine.Config{DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, api := humatest.New(t, Config(nil))
	Register(api, e, nil)
	ids := map[string]bool{}
	for _, item := range api.OpenAPI().Paths {
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Delete, item.Patch} {
			if op != nil {
				ids[op.OperationID] = true
			}
		}
	}
	for id := range operationPermissions {
		if !ids[id] {
			t.Errorf("operationPermissions names %q, which is not an operation", id)
		}
	}
	if len(ids) < 50 {
		t.Errorf("only %d operations registered", len(ids))
	}
}
