package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/manifest"
)

// verifyDatabasePrefix starts the name of a verification database.
const verifyDatabasePrefix = "dg_verify_"

// restoreOutput is the --json output of restore.
type restoreOutput struct {
	OK           bool                  `json:"ok"`
	SourceDir    string                `json:"source_dir"`
	Target       string                `json:"target"` // without its password
	Type         string                `json:"type"`
	VerifyOnly   bool                  `json:"verify_only"`
	Manifest     *summary              `json:"manifest,omitempty"`
	Verification *drivers.VerifyReport `json:"verification,omitempty"`
	Error        string                `json:"error,omitempty"`
}

type restoreFlags struct {
	source                            sourceFlags
	force, recreate, verifyOnly, keep bool
	ageIdentity                       string
}

func (c *cli) restore(ctx context.Context, args []string) error {
	fs, asJSON := c.flags("restore")
	var f restoreFlags
	f.source.register(fs, "datasource type of the target (default: the backup's datasource_type)",
		"restore target: a postgres:// or mysql:// URL, user:pass@tcp(host:3306)/db, or a file or directory path (required)")
	fs.BoolVar(&f.force, "force", false, "restore into a target that already holds data, replacing what the backup holds (without it, a non-empty target is refused)")
	fs.BoolVar(&f.recreate, "recreate", false, "drop and recreate the target database first (postgres, mysql); like --force, allows a non-empty target")
	fs.BoolVar(&f.verifyOnly, "verify-only", false, "restore into a temporary database dg_verify_ID on the target's server, check it, report and drop it")
	fs.BoolVar(&f.keep, "keep-verification-database", false, "with --verify-only: keep the temporary database")
	fs.StringVar(&f.ageIdentity, "age-identity", "", "file of age secret keys (age-keygen output) to decrypt an encrypted backup (env "+envAgeIdentity+")")
	pos, err := c.parse(fs, args, "RUN_DIR")
	if err != nil {
		return err
	}
	if err := required([2]string{"dsn", f.source.dsn}); err != nil {
		return err
	}
	if f.keep && !f.verifyOnly {
		return usagef("--keep-verification-database needs --verify-only")
	}
	r, err := c.openRun(ctx, pos[0])
	if err != nil {
		return err
	}
	out := restoreOutput{SourceDir: r.path, VerifyOnly: f.verifyOnly}
	err = c.runRestore(ctx, r, &f, &out)
	out.OK, out.Error = err == nil, errorText(err)
	if *asJSON {
		return c.reportJSON(out, err)
	}
	if rep := out.Verification; rep != nil {
		c.printReport(rep)
	}
	if err == nil && !f.verifyOnly {
		c.stdout.line(fmt.Sprintf("restored %s into %s", r.path, out.Target))
	}
	return err
}

// runRestore verifies every checksum of the backup in r and then restores
// it, or with --verify-only checks it in a temporary database.
func (c *cli) runRestore(ctx context.Context, r *runDir, f *restoreFlags, out *restoreOutput) error {
	m, err := r.load(ctx)
	if err != nil {
		return err
	}
	out.Manifest = summarize(m)
	typ := f.source.typ
	if typ == "" {
		typ = m.DatasourceType
	}
	drv, err := lookupDriver(typ)
	if err != nil {
		return err
	}
	if want, _ := manifest.FormatFor(m.DatasourceType); drv.Format() != want {
		return usagef("--type %s: the backup is a %s backup (%s format); restore it into a %s target", typ, m.DatasourceType, want, m.DatasourceType)
	}
	src, err := c.source(drv.Type(), &f.source)
	if err != nil {
		return err
	}
	out.Target, out.Type = src.String(), src.Type
	verifier, ok := drv.(drivers.Verifier)
	if f.verifyOnly && !ok {
		return fmt.Errorf("--verify-only: the %s driver cannot verify into a temporary database; restore into a new target instead", drv.Type())
	}
	if !f.verifyOnly && !f.force && !f.recreate {
		if err := refuseNonEmpty(ctx, drv, src); err != nil {
			return err
		}
	}
	ids, err := c.ageIdentities(f.ageIdentity, "--age-identity")
	if err != nil {
		return err
	}
	if err := m.NeedsKey(len(ids) > 0); err != nil {
		return fmt.Errorf("%w: give --age-identity or %s; the target was not touched", err, envAgeIdentity)
	}
	if err := c.verifyRun(ctx, r, m); err != nil {
		return fmt.Errorf("%w; the target was not touched", err)
	}
	logf := c.logf("[RESTORE]")
	p := c.startProgress("restore", m.TotalSizeBytes)
	defer p.stop()
	return manifest.Stream(ctx, r.st, r.key, m, func(ctx context.Context, rd io.Reader) error {
		if !f.verifyOnly {
			return drv.Restore(ctx, src, p.reader(rd), &drivers.RestoreOptions{Recreate: f.recreate, Logf: logf})
		}
		rep, err := verifier.Verify(ctx, src, p.reader(rd), m.Metadata, &drivers.VerifyOptions{Database: verifyDatabaseName(m), Keep: f.keep, Logf: logf})
		out.Verification = rep
		if err == nil && rep != nil && !rep.OK {
			err = fmt.Errorf("verification of %s in %s failed: %s", r.path, rep.Database, strings.Join(rep.Problems, "; "))
		}
		return err
	}, manifest.WithIdentities(ids...))
}

// refuseNonEmpty fails unless target holds nothing a restore would
// replace, as the driver's optional drivers.Inspector tells. A driver that
// cannot tell is refused too: only --force or --recreate restore blind.
func refuseNonEmpty(ctx context.Context, drv drivers.Driver, target drivers.Source) error {
	insp, ok := drv.(drivers.Inspector)
	if !ok {
		return usagef("the %s driver cannot tell whether %s holds data, and a restore replaces what it holds: "+
			"give --force to restore over whatever is there, or restore into a new target", drv.Type(), target)
	}
	empty, err := insp.Empty(ctx, target)
	if err != nil {
		return fmt.Errorf("check whether %s holds data: %w", target, err)
	}
	if !empty {
		return usagef("%s is not empty and a restore would replace what it holds: "+
			"give --force to restore over it, --recreate to drop and recreate it (postgres, mysql), or restore into a new target", target)
	}
	return nil
}

func (c *cli) printReport(rep *drivers.VerifyReport) {
	c.stdout.line("verification database " + rep.Database)
	for _, t := range rep.Tables {
		status := "ok"
		if !t.OK {
			status = "MISMATCH"
		}
		expected := fmt.Sprint(t.ExpectedRows)
		if t.ExpectedRows < 0 {
			expected = "unknown"
		}
		c.stdout.line(fmt.Sprintf("  %-40s %10d rows (expected %s)  %s", t.Table, t.Rows, expected, status))
	}
	for _, p := range rep.Problems {
		c.stdout.line("  problem: " + p)
	}
	switch {
	case rep.OK && rep.Kept:
		c.stdout.line("OK: the backup restores and matches its metadata; " + rep.Database + " was kept")
	case rep.OK:
		c.stdout.line("OK: the backup restores and matches its metadata; " + rep.Database + " was dropped")
	default:
		c.stdout.line("FAILED: the restored copy does not match the backup's metadata")
	}
}

// verifyDatabaseName is "dg_verify_" and the first 8 characters of the
// backup's execution ID, lowercased, with characters other than a-z, 0-9
// and "_" turned into "_" (the creation time when the ID is empty).
func verifyDatabaseName(m *manifest.Manifest) string {
	id := m.ExecutionID
	if id == "" {
		id = m.CreatedAt.UTC().Format("20060102150405")
	}
	b := []byte(strings.ToLower(id))
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '_') {
			b[i] = '_'
		}
	}
	return verifyDatabasePrefix + string(b[:min(len(b), 8)])
}
