package manifest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dataguardian/dataguardian/storage"
)

// Statuses of a run folder, as reported by List.
const (
	// StatusCompleted: manifest.json loads and validates; the backup can
	// be verified and restored.
	StatusCompleted = "completed"
	// StatusIncomplete: no manifest.json; the backup failed, was killed or
	// is still running, and is never offered for restore.
	StatusIncomplete = "incomplete"
	// StatusInvalid: manifest.json exists but cannot be read or trusted;
	// Backup.Reason says why.
	StatusInvalid = "invalid"
	// StatusDamaged: manifest.json loads, but a part it lists is missing
	// or its stored size differs from the manifest (List compares sizes
	// only; Verify hashes). Backup.Reason names the part.
	StatusDamaged = "damaged"
)

// Backup is one run folder found by List.
type Backup struct {
	Dir    string    // run folder key, "{job_id}/{YYYY-MM-DD_HHmmss}"
	JobID  string    // first element of Dir
	Time   time.Time // the folder name, read as UTC
	Status string    // StatusCompleted, StatusDamaged, StatusIncomplete or StatusInvalid
	Reason string    // why the backup is damaged or invalid; empty otherwise
	// Manifest is the loaded manifest of a completed or damaged backup,
	// nil otherwise.
	Manifest *Manifest
	// Files and StoredBytes count what the folder holds in storage
	// (manifest, parts, temporary parts and the run reservation included).
	Files       int
	StoredBytes int64
}

// List returns every run folder under the root of s, newest first (by
// folder time, then by job ID). A run folder is a key prefix
// "{job_id}/{YYYY-MM-DD_HHmmss}/"; keys of any other shape and folders of
// jobs starting with "_" (such as "_system") are skipped.
//
// It lists the storage once and then reads the manifest.json of each folder
// that has one, one at a time: memory grows with the number of folders and
// the size of their manifests, never with the size of the backups. A
// manifest that cannot be read or does not validate makes its folder
// StatusInvalid rather than failing List; a manifest whose parts are
// missing from the listing or listed with another size makes it
// StatusDamaged. List fails only when the listing fails or ctx ends.
func List(ctx context.Context, s storage.Storage) ([]Backup, error) {
	objs, err := s.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Backup
	var hasManifest []bool
	var sizes []map[string]int64 // per folder: file name → size
	for _, o := range objs {
		job, run, file, ok := splitRunKey(o.Key)
		if !ok {
			continue
		}
		dir := job + "/" + run
		if n := len(out); n == 0 || out[n-1].Dir != dir {
			t, _ := time.ParseInLocation(RunFolderLayout, run, time.UTC)
			out = append(out, Backup{Dir: dir, JobID: job, Time: t, Status: StatusIncomplete})
			hasManifest = append(hasManifest, false)
			sizes = append(sizes, map[string]int64{})
		}
		b := &out[len(out)-1]
		b.Files++
		b.StoredBytes += o.Size
		sizes[len(sizes)-1][file] = o.Size
		if file == FileName {
			hasManifest[len(hasManifest)-1] = true
		}
	}
	for i := range out {
		if !hasManifest[i] {
			continue
		}
		if err := load(ctx, s, &out[i]); err != nil {
			return nil, err
		}
		checkSizes(&out[i], sizes[i])
	}
	slices.SortStableFunc(out, func(a, b Backup) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.JobID, b.JobID)
	})
	return out, nil
}

// load reads the manifest of b and sets its status. Only a context error is
// returned; any other failure is recorded in b.
func load(ctx context.Context, s storage.Storage, b *Backup) error {
	m, err := Load(ctx, s, b.Dir)
	switch {
	case err == nil:
		b.Status, b.Manifest = StatusCompleted, m
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, ErrNoManifest): // deleted since the listing
		b.Status = StatusIncomplete
	default:
		b.Status, b.Reason = StatusInvalid, err.Error()
	}
	return nil
}

// checkSizes marks a completed backup damaged when a part its manifest
// lists is not among the stored files or has another size.
func checkSizes(b *Backup, sizes map[string]int64) {
	if b.Status != StatusCompleted {
		return
	}
	for _, c := range b.Manifest.Chunks {
		got, ok := sizes[c.File]
		switch {
		case !ok:
			b.Status, b.Reason = StatusDamaged, fmt.Sprintf("chunk %d: %s %s: copy it back from another storage or restore another backup", c.Number, ErrMissingPart, c.File)
		case got != c.SizeBytes:
			b.Status, b.Reason = StatusDamaged, fmt.Sprintf("chunk %d %s: %s: %d bytes, manifest says %d", c.Number, c.File, ErrSizeMismatch, got, c.SizeBytes)
		default:
			continue
		}
		return
	}
}

// splitRunKey splits "job/YYYY-MM-DD_HHmmss/file…" into its parts. It
// rejects keys outside a run folder: fewer than three elements, a job ID
// starting with "_" (reserved, such as "_system") or a folder name that is
// not a run time.
func splitRunKey(key string) (job, run, file string, ok bool) {
	job, rest, ok1 := strings.Cut(key, "/")
	run, file, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || job == "" || strings.HasPrefix(job, "_") || file == "" {
		return "", "", "", false
	}
	t, err := time.ParseInLocation(RunFolderLayout, run, time.UTC)
	if err != nil || RunFolder(t) != run {
		return "", "", "", false
	}
	return job, run, file, true
}
