package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
)

// chunkResult is the verification of one part.
type chunkResult struct {
	Number    int    `json:"number"`
	File      string `json:"file"`
	SizeBytes int64  `json:"size_bytes"`
	Checksum  string `json:"checksum"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
}

// verifyOutput is the --json output of verify.
type verifyOutput struct {
	Dir      string        `json:"dir"`
	OK       bool          `json:"ok"`
	Checksum string        `json:"checksum,omitempty"` // of the whole stream, from the manifest
	WholeOK  bool          `json:"whole_ok"`           // the parts in order hash to Checksum
	Chunks   []chunkResult `json:"chunks"`
	// Sums is the state of the folder's SHA256SUMS: "ok" (it agrees with
	// manifest.json), "mismatch", "absent" (older backups) or "" (not
	// checked: a part is damaged).
	Sums     string   `json:"sha256sums,omitempty"`
	Manifest *summary `json:"manifest,omitempty"`
	Error    string   `json:"error,omitempty"`
}

func (c *cli) verify(ctx context.Context, args []string) error {
	fs, asJSON := c.flags("verify")
	pos, err := c.parse(fs, args, "RUN_DIR")
	if err != nil {
		return err
	}
	r, err := c.openRun(ctx, pos[0])
	if err != nil {
		return err
	}
	out := verifyOutput{Dir: r.path, Chunks: []chunkResult{}}
	err = c.checkRun(ctx, r, &out)
	out.Error = errorText(err)
	if *asJSON {
		return c.reportJSON(out, err)
	}
	if out.Manifest != nil {
		c.stdout.line(r.path + ": " + describe(out.Manifest))
	}
	for _, ch := range out.Chunks {
		status := "ok"
		if !ch.OK {
			status = "FAILED: " + ch.Error
		}
		c.stdout.line(fmt.Sprintf("  part %d/%d  %s  %s  %s", ch.Number, len(out.Chunks), ch.File, manifest.FormatBytes(ch.SizeBytes), status))
	}
	if out.WholeOK {
		c.stdout.line("  whole stream  " + out.Checksum + "  ok")
	}
	switch out.Sums {
	case sumsOK:
		c.stdout.line("  " + manifest.SumsFileName + "  ok")
	case sumsAbsent:
		c.stdout.line("  " + manifest.SumsFileName + "  absent (an older backup): manifest.json alone was checked")
	case sumsMismatch:
		c.stdout.line("  " + manifest.SumsFileName + "  FAILED: it disagrees with manifest.json")
	}
	if err != nil {
		return err
	}
	c.stdout.line("OK: every checksum matches")
	return nil
}

// States of a run folder's SHA256SUMS in verifyOutput.Sums.
const (
	sumsOK       = "ok"
	sumsMismatch = "mismatch"
	sumsAbsent   = "absent"
)

// checkRun verifies the run folder into out. The whole backup is read once
// (manifest.Verify); only when that fails is each part checked on its own,
// to name every damaged part rather than the first.
func (c *cli) checkRun(ctx context.Context, r *runDir, out *verifyOutput) error {
	m, err := r.load(ctx)
	if err != nil {
		return err
	}
	out.Manifest, out.Checksum = summarize(m), m.Checksum
	verr := c.verifyRun(ctx, r, m)
	// A SHA256SUMS that disagrees is reported once the parts verified:
	// they did.
	sumsBad := errors.Is(verr, manifest.ErrSumsMismatch)
	for _, ch := range m.Chunks {
		res := chunkResult{Number: ch.Number, File: ch.File, SizeBytes: ch.SizeBytes, Checksum: ch.Checksum, OK: true}
		if verr != nil && !sumsBad && ctx.Err() == nil {
			one := *m
			one.Chunks, one.Checksum = []manifest.Chunk{ch}, ch.Checksum
			if err := manifest.Verify(ctx, withoutSums{r.st}, r.key, &one); err != nil {
				res.OK, res.Error = false, err.Error()
			}
		}
		out.Chunks = append(out.Chunks, res)
	}
	switch _, serr := r.st.Stat(ctx, r.key+"/"+manifest.SumsFileName); {
	case sumsBad:
		out.Sums = sumsMismatch
	case verr != nil:
	case serr == nil:
		out.Sums = sumsOK
	case errors.Is(serr, storage.ErrNotFound):
		out.Sums = sumsAbsent
	}
	out.WholeOK = verr == nil || sumsBad
	out.OK = verr == nil
	return verr
}

// withoutSums hides a run folder's SHA256SUMS, which lists every part, from
// the check of one part alone.
type withoutSums struct{ storage.Storage }

func (s withoutSums) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if path.Base(key) == manifest.SumsFileName {
		return nil, &storage.OpError{Op: "open", Key: key, Err: storage.ErrNotFound}
	}
	return s.Storage.Open(ctx, key, offset, length)
}
