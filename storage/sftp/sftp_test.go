package sftp_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/sftp"
	"github.com/dataguardian/dataguardian/storage/storagetest"
)

func config(srv *testsvc.SFTPServer, root string) sftp.Config {
	return sftp.Config{Host: srv.Host, Port: srv.Port, User: srv.User, Password: srv.Password, HostKey: srv.HostKey, Path: root}
}

func newSFTP(t *testing.T, cfg sftp.Config) *sftp.SFTP {
	t.Helper()
	st, err := sftp.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("sftp.New: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The conformance suite against a real SSH server on loopback, each case
// in its own directory.
func TestConformance(t *testing.T) {
	srv := testsvc.StartSFTP(t)
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return newSFTP(t, config(srv, filepath.Join(srv.Dir, "case-"+strconv.FormatInt(n.Add(1), 10))))
	})
}

// Logging in with the private key works as with the password.
func TestPrivateKey(t *testing.T) {
	srv := testsvc.StartSFTP(t)
	cfg := config(srv, filepath.Join(srv.Dir, "k"))
	cfg.Password, cfg.PrivateKey = "", srv.ClientKey
	st := newSFTP(t, cfg)
	if err := st.Put(t.Context(), "a/b", strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(srv.Dir, "k", "a", "b")); err != nil || string(b) != "x" {
		t.Fatalf("on the server: %q %v", b, err)
	}
}

// Another host key than the pinned one, a wrong password, an unreachable
// server and missing settings fail at New, each naming the config key to
// fix; the password never shows in the error.
func TestNewRefuses(t *testing.T) {
	srv := testsvc.StartSFTP(t)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(pub)
	root := filepath.Join(srv.Dir, "r")
	for _, c := range []struct {
		name string
		edit func(*sftp.Config)
		key  string
	}{
		{"another host key", func(c *sftp.Config) { c.HostKey = string(ssh.MarshalAuthorizedKey(other)) }, sftp.KeyHostKey},
		{"no host key", func(c *sftp.Config) { c.HostKey = "" }, sftp.KeyHostKey},
		{"wrong password", func(c *sftp.Config) { c.Password = "wrong-password-123" }, sftp.KeyPassword},
		{"nobody listening", func(c *sftp.Config) { c.Port = 1 }, sftp.KeyHost},
		{"relative path", func(c *sftp.Config) { c.Path = "backups" }, sftp.KeyPath},
		{"no credentials", func(c *sftp.Config) { c.Password = "" }, sftp.KeyPassword},
		{"not a private key", func(c *sftp.Config) { c.Password, c.PrivateKey = "", "nope" }, sftp.KeyPrivateKey},
	} {
		cfg := config(srv, root)
		c.edit(&cfg)
		_, err := sftp.New(t.Context(), cfg)
		var fe *storage.ConfigError
		if !errors.As(err, &fe) || fe.Key != c.key {
			t.Errorf("%s: %v, want an error naming config.%s", c.name, err, c.key)
		}
		if err != nil && (strings.Contains(err.Error(), srv.Password) || strings.Contains(err.Error(), "wrong-password-123")) {
			t.Errorf("%s: the error shows the password: %v", c.name, err)
		}
	}
}

// The connection dropped in the middle of an upload: Put fails, nothing
// is left under the key, the next Put reconnects, and AbortIncomplete
// removes the temporary file the broken upload left.
func TestConnectionDroppedMidUpload(t *testing.T) {
	srv := testsvc.StartSFTP(t)
	root := filepath.Join(srv.Dir, "d")
	st := newSFTP(t, config(srv, root))
	r := storagetest.FaultAt(io.LimitReader(rand.Reader, 8<<20), 2<<20, srv.DropConnections)
	if err := st.Put(t.Context(), "job/run/backup.dump.gz", r, nil); err == nil {
		t.Fatal("Put succeeded although the connection dropped")
	}
	if _, err := os.Stat(filepath.Join(root, "job", "run", "backup.dump.gz")); !os.IsNotExist(err) {
		t.Errorf("a partial object is under the key: %v", err)
	}
	data := bytes.Repeat([]byte("after"), 1000)
	if err := st.Put(t.Context(), "job/run/manifest.json", bytes.NewReader(data), nil); err != nil {
		t.Fatalf("Put after the drop: %v", err)
	}
	if objs, err := st.List(t.Context(), ""); err != nil || len(objs) != 1 || objs[0].Key != "job/run/manifest.json" {
		t.Fatalf("List after the drop: %+v %v", objs, err)
	}
	if err := st.AbortIncomplete(t.Context(), "job/"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "job", "run"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".incomplete-") {
			t.Errorf("left after AbortIncomplete: %s", e.Name())
		}
	}
}
