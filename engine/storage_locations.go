package engine

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/storage"
)

// sealedPrefix marks a secret of a storage location's config stored
// sealed with the server's key (see SecretConfigKey).
const sealedPrefix = "sealed:"

// SecretConfigKey reports whether a storage location config key holds a
// secret (its name says secret, password, token, access key, private key
// or credentials): it is stored sealed with the server's secret key, as
// datasource passwords are, never returned by the API, and kept on an
// update that leaves it out only while the location still points where it
// did.
func SecretConfigKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"secret", "password", "token", "access_key", "private_key", "credentials", "passphrase"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// CreateStorageLocation checks that the location opens (a local directory
// must be allowed by Config.AllowedPaths, apart from every datasource, and
// is created if missing and must be writable; a remote one must answer
// with the given credentials) and stores it, its secrets sealed.
func (e *Engine) CreateStorageLocation(ctx context.Context, loc *StorageLocation) error {
	if strings.TrimSpace(loc.Name) == "" {
		return fmt.Errorf("%w: storage location name is empty: give it a name", ErrInvalid)
	}
	if err := e.paths.CheckStoragePath(ctx, loc); err != nil {
		return err
	}
	if _, err := e.openStorage(ctx, loc); err != nil {
		return err
	}
	sealed, err := e.sealConfig(loc.Config)
	if err != nil {
		return fmt.Errorf("create storage location %q: %w", loc.Name, err)
	}
	loc.Config = sealed
	loc.Enabled = true
	return e.store.CreateStorageLocation(ctx, loc)
}

// UpdateStorageLocation checks that loc opens, as CreateStorageLocation
// does, and writes its name, type, config and enabled flag. A secret left
// out of loc.Config keeps its stored value, unless another config value
// changed (the location points elsewhere): then the stored secret is not
// sent there and the update is refused, naming the secret to give again.
// Backups already written stay where they are: changing the path of a
// location that holds backups makes them unreachable through it.
func (e *Engine) UpdateStorageLocation(ctx context.Context, loc *StorageLocation) error {
	cur, err := e.store.GetStorageLocation(ctx, loc.ID)
	if err != nil {
		return fmt.Errorf("update storage location %s: %w", loc.ID, err)
	}
	if strings.TrimSpace(loc.Name) == "" {
		return fmt.Errorf("%w: storage location name is empty: give it a name", ErrInvalid)
	}
	cfg, err := keepSecrets(cur, loc)
	if err != nil {
		return err
	}
	loc.Config = cfg
	if err := e.paths.CheckStoragePath(ctx, loc); err != nil {
		return err
	}
	if _, err := e.openStorage(ctx, loc); err != nil {
		return err
	}
	if cfg, err = e.sealConfig(cfg); err != nil {
		return fmt.Errorf("update storage location %q: %w", loc.Name, err)
	}
	loc.Config = cfg
	loc.CreatedAt = cur.CreatedAt
	return e.store.UpdateStorageLocation(ctx, loc, "name", "type", "config", "enabled")
}

// keepSecrets is next's config with every secret of cur it leaves out,
// or an error naming the first such secret when next points elsewhere
// (another type, or another value of a key that is no secret).
func keepSecrets(cur, next *StorageLocation) (map[string]string, error) {
	out := maps.Clone(next.Config)
	if out == nil {
		out = map[string]string{}
	}
	moved := cur.Type != next.Type
	for _, k := range slices.Sorted(maps.Keys(cur.Config)) {
		if !SecretConfigKey(k) && cur.Config[k] != next.Config[k] {
			moved = true
		}
	}
	for k := range next.Config {
		if !SecretConfigKey(k) && cur.Config[k] != next.Config[k] {
			moved = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(cur.Config)) {
		if _, given := next.Config[k]; given || !SecretConfigKey(k) || cur.Config[k] == "" {
			continue
		}
		if moved {
			return nil, store.InvalidField("config."+k, "storage location %q points elsewhere now: give config.%s again "+
				"(the stored one is never sent to a new destination)", next.Name, k)
		}
		out[k] = cur.Config[k]
	}
	return out, nil
}

// sealConfig returns cfg with every secret sealed.
func (e *Engine) sealConfig(cfg map[string]string) (map[string]string, error) {
	out := maps.Clone(cfg)
	for k, v := range cfg {
		if !SecretConfigKey(k) || v == "" || strings.HasPrefix(v, sealedPrefix) {
			continue
		}
		sealed, err := e.sealer.Seal([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("seal config.%s: %w", k, err)
		}
		out[k] = sealedPrefix + base64.StdEncoding.EncodeToString(sealed)
	}
	return out, nil
}

// unsealConfig returns cfg with every sealed secret opened (a secret
// stored before secrets were sealed is used as it is).
func (e *Engine) unsealConfig(cfg map[string]string) (map[string]string, error) {
	out := maps.Clone(cfg)
	for k, v := range cfg {
		b64, ok := strings.CutPrefix(v, sealedPrefix)
		if !ok || !SecretConfigKey(k) {
			continue
		}
		sealed, err := base64.StdEncoding.DecodeString(b64)
		if err == nil {
			var plain []byte
			if plain, err = e.sealer.Open(sealed); err == nil {
				out[k] = string(plain)
				continue
			}
		}
		return nil, fmt.Errorf("config.%s cannot be opened with this server's secret key (DG_SECRET_KEY or secret.key changed?): give it again", k)
	}
	return out, nil
}

// openStorage opens loc with its secrets unsealed; a local directory no
// longer allowed (Config.AllowedPaths changed since it was stored) is
// refused.
func (e *Engine) openStorage(ctx context.Context, loc *StorageLocation) (storage.Storage, error) {
	open, ok := e.cfg.StorageOpeners[loc.Type]
	if !ok {
		return nil, store.InvalidField("type", "storage location %q: type %q is not supported: use one of %s",
			loc.Name, loc.Type, strings.Join(slices.Sorted(maps.Keys(e.cfg.StorageOpeners)), ", "))
	}
	if err := e.paths.CheckStorage(loc); err != nil {
		return nil, err
	}
	cfg, err := e.unsealConfig(loc.Config)
	if err != nil {
		return nil, fmt.Errorf("storage location %q: %w", loc.Name, err)
	}
	plain := *loc
	plain.Config = cfg
	return open(ctx, &plain)
}

// DeleteStorageLocation deletes storage location id. A location that a
// backup job or a sync job still uses is refused with ErrInUse naming the
// job. The files in the storage are not touched.
func (e *Engine) DeleteStorageLocation(ctx context.Context, id string) error {
	loc, err := e.store.GetStorageLocation(ctx, id)
	if err != nil {
		return fmt.Errorf("delete storage location %s: %w", id, err)
	}
	jobs, err := e.store.ListBackupJobs(ctx)
	if err != nil {
		return fmt.Errorf("delete storage location %s: %w", id, err)
	}
	for _, j := range jobs {
		if slices.Contains(j.StorageLocationIDs, id) {
			return fmt.Errorf("delete storage location %q: %w: backup job %q (%s) writes to it: remove it from the job's storage_location_ids first",
				loc.Name, ErrInUse, j.Name, j.ID)
		}
	}
	syncs, err := e.store.ListSyncJobs(ctx)
	if err != nil {
		return fmt.Errorf("delete storage location %s: %w", id, err)
	}
	for _, j := range syncs {
		if j.StorageLocationID == id {
			return fmt.Errorf("delete storage location %q: %w: sync job %q (%s) writes to it",
				loc.Name, ErrInUse, j.Name, j.ID)
		}
	}
	if err := e.store.DeleteStorageLocation(ctx, id); err != nil {
		return fmt.Errorf("delete storage location %s: %w", id, err)
	}
	return nil
}
