package manifest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/dataguardian/dataguardian/internal/sqltext"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
)

func newIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func readWith(t *testing.T, s storage.Storage, dir string, opts ...manifest.ReadOption) ([]byte, error) {
	t.Helper()
	var got bytes.Buffer
	_, err := manifest.Read(context.Background(), s, dir, func(_ context.Context, r io.Reader) error {
		_, err := io.Copy(&got, r)
		return err
	}, opts...)
	return got.Bytes(), err
}

// An encrypted backup (every compression, split): its parts end in .age,
// the manifest names the public keys and holds no secret, and it reads
// back with any one recipient's identity; without a key, or with another
// one, reading stops before a byte reaches the restore, naming the
// recipients.
func TestEncryptedRoundTrip(t *testing.T) {
	data := sqltext.Block(7, 1<<20)
	alice, bob, eve := newIdentity(t), newIdentity(t), newIdentity(t)
	for _, c := range compressions {
		t.Run(string(c), func(t *testing.T) {
			s, root := newLocal(t)
			o := opts(c, 64<<10)
			o.Encrypt = &manifest.Encrypt{Recipients: []string{alice.Recipient().String(), bob.Recipient().String()}}
			res, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, o, dumpBytes(data))
			if err != nil {
				t.Fatal(err)
			}
			m := res.Manifest
			if m.Encryption == nil || m.Encryption.Format != "age" || len(m.Encryption.Recipients) != 2 || len(m.Chunks) < 2 ||
				!strings.HasSuffix(strings.TrimSuffix(m.Chunks[0].File, ".part-001"), ".age") {
				t.Fatalf("manifest: %+v, chunks %+v", m.Encryption, m.Chunks)
			}
			raw, _ := os.ReadFile(filepath.Join(root, res.Dir, manifest.FileName))
			if bytes.Contains(raw, []byte("AGE-SECRET-KEY")) || !bytes.Contains(raw, []byte(alice.Recipient().String())) {
				t.Errorf("manifest.json: %s", raw)
			}
			part, _ := os.ReadFile(filepath.Join(root, res.Dir, m.Chunks[0].File))
			if !bytes.HasPrefix(part, []byte("age-encryption.org/v1\n")) || bytes.Contains(part, data[:64]) {
				t.Errorf("the first part is not age ciphertext: %.40q", part)
			}
			for _, id := range []*age.X25519Identity{alice, bob} {
				got, err := readWith(t, s, res.Dir, manifest.WithIdentities(id))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("read with a recipient's key: %d bytes, %v", len(got), err)
				}
			}
			for what, o := range map[string][]manifest.ReadOption{"no key": nil, "another key": {manifest.WithIdentities(eve)}} {
				got, err := readWith(t, s, res.Dir, o...)
				if !errors.Is(err, manifest.ErrNoIdentity) || len(got) != 0 || !strings.Contains(err.Error(), bob.Recipient().String()) {
					t.Errorf("%s: %d bytes reached the restore, %v", what, len(got), err)
				}
			}
		})
	}
}

// A person recovers an encrypted split backup with RECOVERY.txt and
// Debian's age: sha256sum -c, cat, the whole-file check, age -d with the
// key file, zstd -d.
func TestEncryptedRecoveryByHand(t *testing.T) {
	for _, tool := range []string{"sh", "cp", "cat", "sha256sum", "zstd", "age"} {
		if _, err := exec.LookPath(tool); err != nil {
			requireTool(t, tool)
		}
	}
	data := sqltext.Block(8, 1<<20)
	id := newIdentity(t)
	s, root := newLocal(t)
	o := opts(manifest.Zstd, 64<<10)
	o.Encrypt = &manifest.Encrypt{Recipients: []string{id.Recipient().String()}}
	res, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, o, dumpBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	dir := copyFolder(t, filepath.Join(root, res.Dir))
	if err := os.WriteFile(filepath.Join(dir, "KEY.txt"), []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(dir, manifest.RecoveryFileName))
	if err != nil {
		t.Fatal(err)
	}
	steps := recoverySteps(t, string(text))
	if len(steps) != 6 || !strings.Contains(string(text), "Encryption:        age, to "+id.Recipient().String()) {
		t.Fatalf("steps %q:\n%s", steps, text)
	}
	for _, step := range steps[:len(steps)-1] {
		for _, line := range step {
			sh(t, dir, line)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "backup.dump"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("recovered %d bytes (%v), want the %d-byte dump", len(got), err, len(data))
	}
}

// Encryption options that cannot work are refused before anything is
// written.
func TestEncryptBadOptions(t *testing.T) {
	s, root := newLocal(t)
	for what, e := range map[string]*manifest.Encrypt{
		"nobody":       {},
		"not a key":    {Recipients: []string{"ssh-ed25519 AAAA"}},
		"a secret key": {Recipients: []string{newIdentity(t).String()}},
		"both":         {Recipients: []string{newIdentity(t).Recipient().String()}, Passphrase: "pw"},
	} {
		o := opts(manifest.Gzip, 1<<20)
		o.Encrypt = e
		if _, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, o, dumpBytes([]byte("x"))); !errors.Is(err, manifest.ErrInvalidOptions) {
			t.Errorf("%s: %v, want ErrInvalidOptions", what, err)
		}
		if strings.Contains(what, "secret") {
			if err := manifest.CheckRecipient(e.Recipients[0]); err == nil || strings.Contains(err.Error(), e.Recipients[0][16:]) {
				t.Errorf("CheckRecipient of a secret key: %v", err)
			}
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "job-1")); len(entries) != 0 {
		t.Errorf("refused backups left %d folders", len(entries))
	}
}
