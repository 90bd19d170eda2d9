// Package jobstorage opens the storage locations a backup job writes to.
// The engine's backup, restore and retry-upload paths and package cleanup
// all walk a job's destinations this way, so the type lives here, where
// both can import it.
package jobstorage

import (
	"context"

	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/storage"
)

// Storage is one destination of a job, opened or not.
type Storage struct {
	// Loc is the storage location; when it could not be read from the
	// store, a stand-in named by its ID.
	Loc *store.StorageLocation
	// St is the opened storage, nil when Err is set.
	St storage.Storage
	// Err is why the location could not be opened.
	Err error
}

// OpenFunc opens the storage of one location.
type OpenFunc func(ctx context.Context, loc *store.StorageLocation) (storage.Storage, error)

// Open opens, in order, the storage locations ids (a job's
// StorageLocationIDs) with open. A location that cannot be read or opened
// is returned with its error, never left out.
func Open(ctx context.Context, s *store.Store, open OpenFunc, ids []string) []Storage {
	out := make([]Storage, 0, len(ids))
	for _, id := range ids {
		js := Storage{}
		js.Loc, js.Err = s.GetStorageLocation(ctx, id)
		if js.Err == nil {
			js.St, js.Err = open(ctx, js.Loc)
		} else {
			js.Loc = &store.StorageLocation{ID: id, Name: id}
		}
		out = append(out, js)
	}
	return out
}
