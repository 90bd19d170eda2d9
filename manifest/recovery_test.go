package manifest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/internal/sqltext"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
)

// recoverySteps splits RECOVERY.txt into its numbered steps and returns
// the commands ("  $ " lines) of each, in order.
func recoverySteps(t *testing.T, text string) [][]string {
	t.Helper()
	var steps [][]string
	step := regexp.MustCompile(`^\d+\. `)
	for _, l := range strings.Split(text, "\n") {
		switch {
		case step.MatchString(l):
			steps = append(steps, []string{})
		case strings.HasPrefix(l, "  $ "):
			if len(steps) == 0 {
				t.Fatalf("command before the first step: %q", l)
			}
			steps[len(steps)-1] = append(steps[len(steps)-1], strings.TrimPrefix(l, "  $ "))
		}
	}
	return steps
}

// copyFolder copies a run folder with cp -r, as a person would, and
// returns the copy.
func copyFolder(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-r", dir, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -r: %v\n%s", err, out)
	}
	return dst
}

// sh runs one command line of RECOVERY.txt in dir.
func sh(t *testing.T, dir, line string) string {
	t.Helper()
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

// A person with only the run folder follows RECOVERY.txt: sha256sum -c
// SHA256SUMS, then every command up to the database tool, and gets the
// dump back byte for byte.
func TestRecoveryFilesFollowedByHand(t *testing.T) {
	data := sqltext.Block(5, 2<<20)
	for _, c := range []manifest.Compression{manifest.Gzip, manifest.Zstd, manifest.LZ4, manifest.None} {
		t.Run(string(c), func(t *testing.T) {
			tools := []string{"sh", "cp", "cat", "sha256sum"}
			if tool := map[manifest.Compression]string{manifest.Gzip: "gunzip", manifest.Zstd: "zstd", manifest.LZ4: "lz4"}[c]; tool != "" {
				tools = append(tools, tool)
			}
			for _, tool := range tools {
				if _, err := exec.LookPath(tool); err != nil {
					requireTool(t, tool)
				}
			}
			s, root := newLocal(t)
			o := opts(c, 100<<10)
			o.Now = func() time.Time { return time.Date(2025, 2, 13, 6, 0, 1, 0, time.UTC) }
			res, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, o, dumpBytes(data))
			if err != nil {
				t.Fatal(err)
			}
			m := res.Manifest
			if len(m.Chunks) < 3 {
				t.Fatalf("want a split backup, got %d part(s)", len(m.Chunks))
			}
			dir := copyFolder(t, filepath.Join(root, res.Dir))

			// sha256sum -c SHA256SUMS, run directly.
			check := exec.Command("sha256sum", "-c", manifest.SumsFileName)
			check.Dir = dir
			out, err := check.CombinedOutput()
			if err != nil || strings.Count(string(out), ": OK\n") != len(m.Chunks) {
				t.Fatalf("sha256sum -c %s: %v\n%s", manifest.SumsFileName, err, out)
			}

			text, err := os.ReadFile(filepath.Join(dir, manifest.RecoveryFileName))
			if err != nil {
				t.Fatal(err)
			}
			base, _ := manifest.BaseName("postgres", c)
			for _, want := range []string{
				"postgres", "dump (pg_dump custom format)", "Compression:       " + string(c), "2025-02-13T06:00:01Z", "job-1", "exec-1",
				fmt.Sprintf("%d (%s.part-001 to %s)", len(m.Chunks), base, m.Chunks[len(m.Chunks)-1].File),
				fmt.Sprintf("%d bytes", m.TotalSizeBytes), fmt.Sprintf("%d bytes", m.CompressedSizeBytes), m.Checksum,
				"  $ pg_restore --no-owner --no-acl -d DB backup.dump\n",
			} {
				if !strings.Contains(string(text), want) {
					t.Errorf("RECOVERY.txt lacks %q:\n%s", want, text)
				}
			}
			steps := recoverySteps(t, string(text))
			if len(steps) != 5 || len(steps[0]) != 1 || steps[0][0] != "sha256sum -c SHA256SUMS" {
				t.Fatalf("steps %q; want 5, the first sha256sum -c SHA256SUMS:\n%s", steps, text)
			}
			// Every step but the last, which loads the database.
			var printed strings.Builder
			for _, step := range steps[:len(steps)-1] {
				for _, line := range step {
					printed.WriteString(sh(t, dir, line))
				}
			}
			if !strings.Contains(printed.String(), base+": OK") {
				t.Errorf("the whole-file check did not print %q:\n%s", base+": OK", printed.String())
			}
			got, err := os.ReadFile(filepath.Join(dir, "backup.dump"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("recovered %d bytes that differ from the %d-byte dump", len(got), len(data))
			}

			// A damaged part makes the by-hand checks fail, as they should.
			flipByte(t, filepath.Join(dir, m.Chunks[1].File), 10)
			check = exec.Command("sha256sum", "-c", manifest.SumsFileName)
			check.Dir = dir
			if out, err := check.CombinedOutput(); err == nil || !strings.Contains(string(out), m.Chunks[1].File+": FAILED") {
				t.Errorf("sha256sum -c passed a damaged part: %v\n%s", err, out)
			}
			join := exec.Command("sh", "-c", strings.Join(append(steps[1], steps[2]...), " && "))
			join.Dir = dir
			if out, err := join.CombinedOutput(); err == nil {
				t.Errorf("the whole-file check passed a damaged part:\n%s", out)
			}
		})
	}
}

// An unsplit backup has nothing to join; every datasource type names its
// own tool.
func TestRecoveryTextPerType(t *testing.T) {
	for typ, want := range map[string]string{
		"postgres":  "  $ pg_restore --no-owner --no-acl -d DB backup.dump\n",
		"mysql":     "  $ mysql DB < backup.sql\n",
		"mariadb":   "  $ mysql DB < backup.sql\n",
		"sqlite":    "  $ cp backup.db app.db\n",
		"files":     "  $ tar -xf backup.tar -C DIR\n",
		"mongodb":   "  $ mongorestore --archive=backup.archive --drop\n",
		"sqlserver": "/SourceFile:backup.bacpac ",
	} {
		t.Run(typ, func(t *testing.T) {
			s, root := newLocal(t)
			o := opts(manifest.Gzip, 1<<20)
			o.DatasourceType = typ
			res, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, o, dumpBytes([]byte("small")))
			if err != nil {
				t.Fatal(err)
			}
			text, err := os.ReadFile(filepath.Join(root, res.Dir, manifest.RecoveryFileName))
			if err != nil {
				t.Fatal(err)
			}
			format, _ := manifest.FormatFor(typ)
			for _, w := range []string{want, "nothing to join", "gunzip -c backup." + format + ".gz > backup." + format + "\n"} {
				if !strings.Contains(string(text), w) {
					t.Errorf("RECOVERY.txt lacks %q:\n%s", w, text)
				}
			}
			if strings.Contains(string(text), "  $ cat ") {
				t.Errorf("an unsplit backup is joined:\n%s", text)
			}
			sums, _ := os.ReadFile(filepath.Join(root, res.Dir, manifest.SumsFileName))
			if want := strings.TrimPrefix(res.Manifest.Checksum, "sha256:") + "  backup." + format + ".gz\n"; string(sums) != want {
				t.Errorf("SHA256SUMS = %q, want %q", sums, want)
			}
		})
	}
}

// Verify checks SHA256SUMS when there is one; backups without the aids
// (written before them) still verify and restore.
func TestVerifyChecksSums(t *testing.T) {
	s, dir, res, data := writeSplit(t, manifest.Zstd)
	ctx := context.Background()
	sums := filepath.Join(dir, manifest.SumsFileName)
	orig, err := os.ReadFile(sums)
	if err != nil {
		t.Fatal(err)
	}
	if err := manifest.Verify(ctx, s, res.Dir, res.Manifest); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(orig), "\n")
	cases := map[string]string{
		"binary mode and CRLF": strings.ReplaceAll(strings.ReplaceAll(string(orig), "  backup", " *backup"), "\n", "\r\n"),
		"other order":          lines[1] + lines[0] + strings.Join(lines[2:], ""),
	}
	for name, content := range cases {
		if err := os.WriteFile(sums, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := manifest.Verify(ctx, s, res.Dir, res.Manifest); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string]string{
		"wrong sum":    strings.Replace(string(orig), string(orig[:8]), "00000000", 1),
		"missing part": strings.Join(lines[1:], ""),
		"extra file":   string(orig) + strings.Repeat("0", 64) + "  backup.dump.zst.part-999\n",
		"listed twice": string(orig) + lines[0],
		"not a line":   "garbage\n" + string(orig),
	}
	for name, content := range bad {
		if err := os.WriteFile(sums, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		err := manifest.Verify(ctx, s, res.Dir, res.Manifest)
		if !errors.Is(err, manifest.ErrSumsMismatch) || !strings.Contains(err.Error(), "manifest.json, which is the authority") {
			t.Errorf("%s: Verify = %v, want ErrSumsMismatch", name, err)
		}
	}
	for _, f := range []string{manifest.SumsFileName, manifest.RecoveryFileName} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(readBack(t, s, res.Dir), data) {
		t.Fatal("a backup without recovery aids reads back wrong")
	}
}

// failPut fails the Put of one file name and passes everything else.
type failPut struct {
	storage.Storage
	name string
}

func (f failPut) Put(ctx context.Context, key string, r io.Reader, o *storage.PutOptions) error {
	if filepath.Base(key) == f.name {
		return errInjected
	}
	return f.Storage.Put(ctx, key, r, o)
}

// A destination that cannot take the recovery aids does not get the
// manifest either, and keeps nothing of the backup; the others do.
func TestRecoveryFilesOnEveryDestination(t *testing.T) {
	for _, name := range []string{manifest.SumsFileName, manifest.RecoveryFileName} {
		t.Run(name, func(t *testing.T) {
			a, rootA := newLocal(t)
			b, rootB := newLocal(t)
			badBase, _ := newLocal(t)
			dests := []manifest.Destination{{Name: "a", Storage: a}, {Name: "bad", Storage: failPut{badBase, name}}, {Name: "b", Storage: b}}
			res, err := manifest.Write(context.Background(), dests, opts(manifest.Gzip, 64<<10), dumpBytes(sqltext.Block(6, 1<<20)))
			if err != nil {
				t.Fatal(err)
			}
			if res.Destinations[0].Err != nil || !errors.Is(res.Destinations[1].Err, errInjected) || res.Destinations[2].Err != nil {
				t.Fatalf("results = %+v", res.Destinations)
			}
			if objs, _ := badBase.List(context.Background(), res.Dir+"/"); len(objs) != 0 {
				t.Errorf("failed destination still holds %v", objs)
			}
			for _, root := range []string{rootA, rootB} {
				for _, f := range []string{manifest.SumsFileName, manifest.RecoveryFileName} {
					got, err := os.ReadFile(filepath.Join(root, res.Dir, f))
					want := res.Manifest.Sums()
					if f == manifest.RecoveryFileName {
						want = res.Manifest.Recovery()
					}
					if err != nil || !bytes.Equal(got, want) {
						t.Errorf("%s in %s: %v", f, root, err)
					}
				}
			}
		})
	}
}
