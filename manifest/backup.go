package manifest

import (
	"context"
	"fmt"
	"io"

	"github.com/dataguardian/dataguardian/storage"
)

// Result describes a backup written by Write.
type Result struct {
	Dir          string              // run folder key, "{job_id}/{YYYY-MM-DD_HHmmss}"
	Manifest     *Manifest           // nil when the backup failed
	Destinations []DestinationResult // per destination: nil Err when it holds the backup
}

// DumpFunc writes one dump of a datasource to w and describes it.
type DumpFunc func(ctx context.Context, w io.Writer) (Metadata, error)

// Write runs one backup end to end: it reserves a run folder on every
// destination, streams dump through the pipeline and commits manifest.json.
// When dump fails or ctx is cancelled the backup is aborted: no manifest is
// written and the parts are removed. The returned Result is never nil.
func Write(ctx context.Context, dests []Destination, opts WriteOptions, dump DumpFunc) (*Result, error) {
	w, err := NewWriter(ctx, dests, opts)
	if err != nil {
		return &Result{}, err
	}
	res := &Result{Dir: w.Dir()}
	md, err := dump(ctx, w)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		w.Abort()
		res.Destinations = w.Results()
		return res, fmt.Errorf("dump: %w", err)
	}
	res.Manifest, err = w.Commit(md)
	res.Destinations = w.Results()
	return res, err
}

// RestoreFunc loads a decompressed, verified backup stream into a target.
type RestoreFunc func(ctx context.Context, r io.Reader) error

// Read restores one backup: it loads the manifest of dir, verifies every
// part and the whole checksum (a corrupt, truncated or missing part stops it
// before restore is called), then streams the decompressed (and, with
// WithIdentities, decrypted) data to restore.
// Each part is checked again as it is streamed; the stream is read to its end
// so the final checks always run.
func Read(ctx context.Context, s storage.Storage, dir string, restore RestoreFunc, opts ...ReadOption) (*Manifest, error) {
	m, err := Load(ctx, s, dir)
	if err != nil {
		return nil, err
	}
	if err := Verify(ctx, s, dir, m); err != nil {
		return m, err
	}
	return m, Stream(ctx, s, dir, m, restore, opts...)
}

// Stream feeds the decompressed stream of a verified backup to restore and
// reads it to its end, so the checks of the last part and of the whole
// stream always run. Call Verify first: Stream checks each part again as it
// goes, but by then restore has seen the earlier parts.
func Stream(ctx context.Context, s storage.Storage, dir string, m *Manifest, restore RestoreFunc, opts ...ReadOption) error {
	rc, err := OpenStream(ctx, s, dir, m, opts...)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := restore(ctx, rc); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// Drain what the restore left unread (tar padding, say) so the
	// checksums of the last part and of the whole stream are checked.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return err
	}
	return nil
}
