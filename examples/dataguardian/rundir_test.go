package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/manifest"
)

// sqliteRun backs up a new SQLite database of about rows KiB into a
// storage under dir, split into 1 MiB parts, and returns the database, the
// storage and the run folder.
func sqliteRun(t *testing.T, dir string, rows int) (db, storageDir, run string) {
	t.Helper()
	db, storageDir = filepath.Join(dir, "app.db"), filepath.Join(dir, "backups")
	newSQLite(t, db, rows)
	res := ok(t, "backup", "--type", "sqlite", "--dsn", db, "--storage", storageDir, "--compression", "gzip", "--max-file-size-mb", "1")
	return db, storageDir, strings.TrimSpace(res.stdout)
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-r", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -r %s %s: %v\n%s", from, to, err, out)
	}
}

// A run folder copied or renamed anywhere still verifies and restores: the
// manifest says what it is, not the folder's path or name. Neither command
// writes into it.
func TestRunFolderCopiedOrRenamed(t *testing.T) {
	dir := t.TempDir()
	db, _, run := sqliteRun(t, dir, 2500)
	want := sqliteDigest(t, db)

	copied := filepath.Join(t.TempDir(), "x")
	copyTree(t, run, copied)
	renamed := filepath.Join(t.TempDir(), "last good backup (copy)")
	copyTree(t, run, renamed)
	for _, folder := range []string{copied, renamed} {
		t.Run(filepath.Base(folder), func(t *testing.T) {
			before := treeListing(t, folder)
			res := ok(t, "verify", folder)
			if !strings.Contains(res.stdout, "OK: every checksum matches") || !strings.Contains(res.stdout, manifest.SumsFileName+"  ok") {
				t.Errorf("verify %s:\n%s", folder, res.stdout)
			}
			var v verifyOutput
			decode(t, ok(t, "verify", folder, "--json"), &v)
			if !v.OK || v.Dir != folder || v.Sums != sumsOK || v.Manifest == nil || v.Manifest.JobID != "sqlite-app" {
				t.Errorf("verify --json = %+v", v)
			}
			target := filepath.Join(t.TempDir(), "restored.db")
			var r restoreOutput
			decode(t, ok(t, "restore", folder, "--dsn", target, "--force", "--json"), &r)
			if !r.OK || r.SourceDir != folder {
				t.Errorf("restore --json = %+v", r)
			}
			if got := sqliteDigest(t, target); got != want {
				t.Errorf("restored data differs:\n got %s\nwant %s", got, want)
			}
			if after := treeListing(t, folder); !slices.Equal(before, after) {
				t.Errorf("verify and restore changed the run folder:\n%s\nwas:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
			}
		})
	}

	t.Run("damage in a copy is named", func(t *testing.T) {
		folder := filepath.Join(t.TempDir(), "y")
		copyTree(t, run, folder)
		flipFileByte(t, filepath.Join(folder, "backup.db.gz.part-002"))
		res := fails(t, 1, "verify", folder)
		if !strings.Contains(res.stderr, "backup.db.gz.part-002") || !strings.Contains(res.stderr, "checksum mismatch") {
			t.Errorf("verify of a damaged copy:\n%v", res)
		}
	})

	t.Run("SHA256SUMS that disagrees", func(t *testing.T) {
		folder := filepath.Join(t.TempDir(), "z")
		copyTree(t, run, folder)
		sums := filepath.Join(folder, manifest.SumsFileName)
		b, err := os.ReadFile(sums)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] == '0' { // another sum of the same shape
			b[0] = '1'
		} else {
			b[0] = '0'
		}
		if err := os.WriteFile(sums, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var v verifyOutput
		decode(t, fails(t, 1, "verify", folder, "--json"), &v)
		if v.OK || !v.WholeOK || v.Sums != sumsMismatch || !strings.Contains(v.Error, "SHA256SUMS disagrees") {
			t.Errorf("verify --json = %+v", v)
		}
		for _, ch := range v.Chunks {
			if !ch.OK {
				t.Errorf("part %d reported damaged: %s", ch.Number, ch.Error)
			}
		}
		// A backup from before the recovery aids has none: fine.
		os.Remove(sums)
		os.Remove(filepath.Join(folder, manifest.RecoveryFileName))
		decode(t, ok(t, "verify", folder, "--json"), &v)
		if !v.OK || v.Sums != sumsAbsent {
			t.Errorf("verify --json without SHA256SUMS = %+v", v)
		}
	})

	t.Run("folder without manifest", func(t *testing.T) {
		res := fails(t, 2, "verify", t.TempDir())
		if !strings.Contains(res.stderr, "is not a run folder") || !strings.Contains(res.stderr, "manifest.json") {
			t.Errorf("verify of an empty folder:\n%v", res)
		}
	})
}

func flipFileByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ls marks a backup whose parts are missing or of the wrong size damaged,
// from sizes alone; a flipped byte of the same size takes verify to find.
func TestLsMarksDamaged(t *testing.T) {
	dir := t.TempDir()
	_, storageDir, run := sqliteRun(t, dir, 2500)
	job := filepath.Dir(run)
	folders := map[string]string{}
	for _, name := range []string{"2025-01-01_000001", "2025-01-01_000002", "2025-01-01_000003"} {
		folders[name] = filepath.Join(job, name)
		copyTree(t, run, folders[name])
	}
	if err := os.Truncate(filepath.Join(folders["2025-01-01_000001"], "backup.db.gz.part-002"), 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(folders["2025-01-01_000002"], "backup.db.gz.part-001")); err != nil {
		t.Fatal(err)
	}
	flipFileByte(t, filepath.Join(folders["2025-01-01_000003"], "backup.db.gz.part-001"))

	var entries []lsEntry
	decode(t, ok(t, "ls", storageDir, "--json"), &entries)
	status := map[string]lsEntry{}
	for _, e := range entries {
		status[filepath.Base(e.Key)] = e
	}
	for name, want := range map[string]struct{ status, reason string }{
		filepath.Base(run):  {manifest.StatusCompleted, ""},
		"2025-01-01_000001": {manifest.StatusDamaged, "backup.db.gz.part-002: part size mismatch: 1000 bytes"},
		"2025-01-01_000002": {manifest.StatusDamaged, "missing part backup.db.gz.part-001"},
		"2025-01-01_000003": {manifest.StatusCompleted, ""},
	} {
		e := status[name]
		if e.Status != want.status || !strings.Contains(e.Reason, want.reason) || (want.reason == "") != (e.Reason == "") {
			t.Errorf("%s: status %q reason %q, want %q with %q", name, e.Status, e.Reason, want.status, want.reason)
		}
		if e.DatasourceType != "sqlite" || e.Parts < 2 {
			t.Errorf("%s: type %q, %d parts; want what the manifest says", name, e.DatasourceType, e.Parts)
		}
	}
	res := ok(t, "ls", storageDir)
	if strings.Count(res.stdout, " damaged ") != 2 || !strings.Contains(res.stderr, "part size mismatch") {
		t.Errorf("ls:\n%v", res)
	}
}
