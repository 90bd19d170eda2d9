package health

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/storage"
)

// StorageHealth is the outcome of one storage location check. (The HTTP
// API's schema is named after it.)
type StorageHealth struct {
	StorageLocationID string             `json:"storage_location_id"`
	Name              string             `json:"name"`
	Type              string             `json:"type"`
	Status            store.HealthStatus `json:"status"` // ok or unreachable
	LatencyMS         int64              `json:"latency_ms"`
	// FreeBytes is the space left, when the storage can tell (nil otherwise).
	FreeBytes    *uint64   `json:"free_bytes,omitempty"`
	ErrorMessage string    `json:"error_message,omitempty"`
	CheckedAt    time.Time `json:"checked_at"`
}

// CheckStorages checks every enabled storage location, concurrently: it
// opens it, writes, reads back and deletes a small probe object under
// "_system/", and asks for the free space when the storage can tell. A
// location that fails any step is "unreachable" with the reason. The
// result is recorded as the last one (LastStorageHealth). The error is
// non-nil only when the locations cannot be listed.
func (s *Service) CheckStorages(ctx context.Context) ([]StorageHealth, error) {
	return s.checkStorages(ctx, s.opts.Timeout)
}

func (s *Service) checkStorages(ctx context.Context, timeout time.Duration) ([]StorageHealth, error) {
	enabled, err := s.enabledStorages(ctx)
	if err != nil {
		return nil, fmt.Errorf("check storages: %w", err)
	}
	out := s.probeStorages(ctx, enabled, timeout)
	if ctx.Err() == nil {
		s.saveStorageHealth(ctx, &storageRecord{CheckedAt: s.now(), Storages: out})
	}
	return out, nil
}

// enabledStorages returns the enabled storage locations, by name.
func (s *Service) enabledStorages(ctx context.Context) ([]*store.StorageLocation, error) {
	locs, err := s.store.ListStorageLocations(ctx)
	if err != nil {
		return nil, err
	}
	var enabled []*store.StorageLocation
	for i := range locs {
		if locs[i].Enabled {
			enabled = append(enabled, &locs[i])
		}
	}
	return enabled, nil
}

// probeStorages checks locs concurrently, each within timeout.
func (s *Service) probeStorages(ctx context.Context, locs []*store.StorageLocation, timeout time.Duration) []StorageHealth {
	out := make([]StorageHealth, len(locs))
	var wg sync.WaitGroup
	for i, loc := range locs {
		out[i] = StorageHealth{StorageLocationID: loc.ID, Name: loc.Name, Type: loc.Type}
		wg.Go(func() { s.checkStorage(ctx, loc, timeout, &out[i]) })
	}
	wg.Wait()
	return out
}

func (s *Service) checkStorage(ctx context.Context, loc *store.StorageLocation, timeout time.Duration, sh *StorageHealth) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err := s.probeStorage(ctx, loc, sh)
	sh.LatencyMS = time.Since(start).Milliseconds()
	sh.CheckedAt = s.now()
	sh.Status = store.HealthOK
	if err != nil {
		sh.Status, sh.ErrorMessage = store.HealthUnreachable, truncate(err.Error(), maxErrorLen)
	}
}

func (s *Service) probeStorage(ctx context.Context, loc *store.StorageLocation, sh *StorageHealth) error {
	st, err := s.d.OpenStorage(ctx, loc)
	if err != nil {
		return err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	key := probePrefix + hex.EncodeToString(rnd[:])
	body := []byte("dataguardian health probe " + s.now().Format(time.RFC3339Nano) + "\n")
	if err := st.Put(ctx, key, bytes.NewReader(body), nil); err != nil {
		return fmt.Errorf("write probe %s: %w", key, err)
	}
	rc, err := st.Open(ctx, key, 0, -1)
	if err == nil {
		var got []byte
		got, err = io.ReadAll(io.LimitReader(rc, int64(len(body))+1))
		rc.Close()
		if err == nil && !bytes.Equal(got, body) {
			err = errors.New("content differs from what was written")
		}
	}
	derr := st.Delete(context.WithoutCancel(ctx), key)
	if err != nil {
		return fmt.Errorf("read probe %s: %w", key, err)
	}
	if derr != nil {
		return fmt.Errorf("delete probe %s: %w", key, derr)
	}
	if fs, ok := st.(storage.FreeSpacer); ok {
		n, err := fs.FreeBytes()
		if err != nil {
			return err
		}
		sh.FreeBytes = &n
	}
	return nil
}

// ---------------------------------------------------------------------------
// The last storage result.

// storageKey is the system setting holding the last storage checks,
// shared by every process on the metadata store (only one of them runs
// the health cycle).
const storageKey = "health.storages"

// storageRecord is the stored form of the last storage checks.
type storageRecord struct {
	// CheckedAt is when the last full check (every enabled location) ran,
	// on the service's clock.
	CheckedAt time.Time       `json:"checked_at"`
	Storages  []StorageHealth `json:"storages"`
	// saved is when the record was written (the store's clock); not stored.
	saved time.Time
}

func (s *Service) saveStorageHealth(ctx context.Context, rec *storageRecord) {
	v, err := json.Marshal(rec)
	if err == nil {
		err = s.store.PutSetting(context.WithoutCancel(ctx), &store.Setting{Key: storageKey, Value: v})
	}
	if err != nil {
		s.log.Warn("record storage health", "err", err)
	}
}

// loadStorageHealth returns the stored record, or nil when there is none
// or it cannot be read.
func (s *Service) loadStorageHealth(ctx context.Context) *storageRecord {
	st, err := s.store.GetSetting(ctx, storageKey)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("read storage health", "err", err)
		}
		return nil
	}
	rec := &storageRecord{saved: st.UpdatedAt}
	if err := json.Unmarshal(st.Value, rec); err != nil {
		s.log.Warn("read storage health", "err", err)
		return nil
	}
	return rec
}

// LastStorageHealth returns the storage checks every health cycle (and
// CheckStorages) records in the metadata store, so that health endpoints
// can be polled without touching storage. It probes only what it has no
// recent result for, and records that too: every enabled location when
// there is no result yet or the last full check is older than two health
// intervals (no health worker runs), otherwise only locations enabled,
// created or changed since the result was recorded. Locations deleted or
// disabled since are left out; names and types are the current ones. The
// error is non-nil only when the locations cannot be listed.
func (s *Service) LastStorageHealth(ctx context.Context) ([]StorageHealth, error) {
	o := s.opts
	rec := s.loadStorageHealth(ctx)
	if rec == nil || s.now().Sub(rec.CheckedAt) > 2*o.Interval {
		return s.checkStorages(ctx, o.Timeout)
	}
	enabled, err := s.enabledStorages(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage health: %w", err)
	}
	last := make(map[string]StorageHealth, len(rec.Storages))
	for _, sh := range rec.Storages {
		last[sh.StorageLocationID] = sh
	}
	out := make([]StorageHealth, len(enabled))
	var stale []*store.StorageLocation
	var at []int
	for i, loc := range enabled {
		sh, ok := last[loc.ID]
		if !ok || loc.UpdatedAt.After(rec.saved) {
			stale, at = append(stale, loc), append(at, i)
			continue
		}
		sh.Name, sh.Type = loc.Name, loc.Type
		out[i] = sh
	}
	if len(stale) == 0 {
		return out, nil
	}
	for j, sh := range s.probeStorages(ctx, stale, o.Timeout) {
		out[at[j]] = sh
	}
	if ctx.Err() == nil {
		s.saveStorageHealth(ctx, &storageRecord{CheckedAt: rec.CheckedAt, Storages: out})
	}
	return out, nil
}
