package main

import (
	"context"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
)

// lsEntry is one run folder in the --json output of ls.
type lsEntry struct {
	Dir            string               `json:"dir"` // absolute path
	Key            string               `json:"key"` // "{job_id}/{YYYY-MM-DD_HHmmss}"
	JobID          string               `json:"job_id"`
	Time           time.Time            `json:"time"`
	Status         string               `json:"status"`
	Reason         string               `json:"reason,omitempty"`
	DatasourceType string               `json:"datasource_type,omitempty"`
	Compression    manifest.Compression `json:"compression,omitempty"`
	SizeBytes      int64                `json:"size_bytes"` // stored: the compressed parts of a completed backup, else every file
	Size           string               `json:"size"`
	TotalSizeBytes int64                `json:"total_size_bytes,omitempty"` // uncompressed
	Parts          int                  `json:"parts"`
}

func (c *cli) ls(ctx context.Context, args []string) error {
	fs, asJSON := c.flags("ls")
	pos, err := c.parse(fs, args, "DIR")
	if err != nil {
		return err
	}
	var st storage.Storage
	root := pos[0]
	// where is the folder of a run under root, as a path or a URL.
	where := func(key string) string { return remoteJoin(root, key) }
	if isRemote(root) {
		if st, _, err = c.openRemote(ctx, root, false); err != nil {
			return err
		}
	} else {
		l, err := openStorageDir(root)
		if err != nil {
			return err
		}
		st = l
		where = func(key string) string { return filepath.Join(l.Root(), filepath.FromSlash(key)) }
	}
	backups, err := manifest.List(ctx, st)
	if err != nil {
		return fmt.Errorf("list %s: %w", pos[0], err)
	}
	entries := make([]lsEntry, 0, len(backups))
	for _, b := range backups {
		e := lsEntry{Dir: where(b.Dir), Key: b.Dir, JobID: b.JobID, Time: b.Time,
			Status: b.Status, Reason: b.Reason, SizeBytes: b.StoredBytes}
		if m := b.Manifest; m != nil {
			e.DatasourceType, e.Compression, e.TotalSizeBytes, e.Parts = m.DatasourceType, m.Compression, m.TotalSizeBytes, len(m.Chunks)
			e.SizeBytes = m.CompressedSizeBytes
		}
		e.Size = manifest.FormatBytes(e.SizeBytes)
		entries = append(entries, e)
	}
	if *asJSON {
		return c.printJSON(entries)
	}
	if len(entries) == 0 {
		c.stdout.line("no backups under " + pos[0])
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FOLDER\tSTATUS\tTYPE\tCOMPRESSION\tSIZE\tPARTS")
	for _, e := range entries {
		typ, comp, parts := "-", "-", "-"
		if e.Status == manifest.StatusCompleted || e.Status == manifest.StatusDamaged {
			typ, comp, parts = e.DatasourceType, string(e.Compression), fmt.Sprint(e.Parts)
		}
		shown := filepath.Join(pos[0], filepath.FromSlash(e.Key)) // as the user named the storage
		if isRemote(root) {
			shown = e.Dir
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", shown, e.Status, typ, comp, e.Size, parts)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range entries {
		if e.Reason != "" {
			c.stderr.line(fmt.Sprintf("%s: %s", e.Key, e.Reason))
		}
	}
	return nil
}
