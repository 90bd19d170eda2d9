package main

import (
	"context"
	"fmt"

	"github.com/dataguardian/dataguardian/manifest"
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
	Manifest *summary      `json:"manifest,omitempty"`
	Error    string        `json:"error,omitempty"`
}

func (c *cli) verify(ctx context.Context, args []string) error {
	fs, asJSON := c.flags("verify")
	pos, err := c.parse(fs, args, "RUN_DIR")
	if err != nil {
		return err
	}
	r, err := openRunDir(pos[0])
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
		c.stdout.line(fmt.Sprintf("  part %d/%d  %s  %s  %s", ch.Number, len(out.Chunks), ch.File, humanBytes(ch.SizeBytes), status))
	}
	if err != nil {
		return err
	}
	c.stdout.line("  whole stream  " + out.Checksum + "  ok")
	c.stdout.line("OK: every checksum matches")
	return nil
}

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
	for _, ch := range m.Chunks {
		res := chunkResult{Number: ch.Number, File: ch.File, SizeBytes: ch.SizeBytes, Checksum: ch.Checksum, OK: true}
		if verr != nil && ctx.Err() == nil {
			one := *m
			one.Chunks, one.Checksum = []manifest.Chunk{ch}, ch.Checksum
			if err := manifest.Verify(ctx, r.st, r.key, &one); err != nil {
				res.OK, res.Error = false, err.Error()
			}
		}
		out.Chunks = append(out.Chunks, res)
	}
	out.WholeOK = verr == nil
	out.OK = verr == nil
	return verr
}
