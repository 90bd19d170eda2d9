package drivertest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/files"
)

// envBlind makes TestRunRefusesBlindEqual run the suite itself, in the
// child process its parent starts.
const envBlind = "DRIVERTEST_BLIND_EQUAL"

// A harness whose Equal cannot tell a mutated source from the original
// fails the suite: its round trips would prove nothing.
func TestRunRefusesBlindEqual(t *testing.T) {
	if os.Getenv(envBlind) == "1" {
		drivertest.Run(t, drivertest.Harness{
			Driver: files.New(),
			NewSource: func(t *testing.T) drivers.Source {
				dir := filepath.Join(t.TempDir(), "tree")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "f"), []byte("one\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return drivers.Source{Type: "files", Path: dir}
			},
			Mutate: func(t *testing.T, src drivers.Source) {
				if err := os.WriteFile(filepath.Join(src.Path, "f"), []byte("two\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			NewTarget: func(t *testing.T) drivers.Source {
				return drivers.Source{Type: "files", Path: filepath.Join(t.TempDir(), "restored")}
			},
			Equal: func(testing.TB, drivers.Source, drivers.Source) {}, // sees no difference, ever
		})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunRefusesBlindEqual$/^EqualNoticesMutate$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envBlind+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Equal does not tell") {
		t.Fatalf("the suite with a blind Equal: %v\n%s", err, out)
	}
}
