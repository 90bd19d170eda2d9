package manifest_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/internal/sqltext"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage/local"
)

const killChildEnv = "DG_TEST_SIGKILL_ROOT"

// TestMain lets the test binary act as the backup process that
// TestSIGKILLDuringBackup kills.
func TestMain(m *testing.M) {
	if root := os.Getenv(killChildEnv); root != "" {
		runSlowBackup(root)
		os.Exit(3) // not reached: the parent kills us first
	}
	os.Exit(m.Run())
}

// runSlowBackup writes a never-ending dump, announcing on stdout once a few
// parts have been stored.
func runSlowBackup(root string) {
	s, err := local.New(root)
	if err != nil {
		panic(err)
	}
	block := sqltext.Block(9, 1<<20)
	manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}},
		manifest.WriteOptions{JobID: "job-1", ExecutionID: "exec-1", DatasourceType: "mysql", Compression: manifest.None, PartSize: 256 << 10},
		func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
			for i := 0; ; i++ {
				if _, err := w.Write(block); err != nil {
					return manifest.Metadata{}, err
				}
				if i == 3 {
					os.Stdout.WriteString("parts written\n")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
}

func TestSIGKILLDuringBackup(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "parts written\n" {
		cmd.Process.Kill()
		t.Fatalf("child said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	var files []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 4 {
		t.Fatalf("expected the killed backup's in-progress parts on disk, found %v", files)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if name == manifest.FileName || strings.HasPrefix(name, "backup.") {
			t.Errorf("killed backup left %s under a final name", f)
		}
	}
	// And the run folder is never offered for restore.
	s, _ := local.New(root)
	dir, _ := filepath.Rel(root, filepath.Dir(files[0]))
	if _, err := manifest.Load(context.Background(), s, filepath.ToSlash(dir)); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("Load of the killed backup: %v", err)
	}
}
