// Package sftp is a storage.Storage on a directory of an SSH server, over
// SFTP (pkg/sftp on x/crypto/ssh).
//
// The server's host key must be pinned (Config.HostKey): there is no
// accept-any default, so a machine in the middle cannot collect backups
// or credentials. Objects are written to a hidden temporary file beside
// their key and renamed into place (posix-rename@openssh.com), so a
// failed, cancelled or killed Put never leaves a partial object under a
// key; IfNotExist links the temporary file to the key
// (hardlink@openssh.com), which fails when the key exists. OpenSSH's
// sftp-server has both extensions.
package sftp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/dataguardian/dataguardian/storage"
)

// Config keys of a storage location of type "sftp" (see ConfigFrom).
const (
	KeyHost                 = "host"
	KeyPort                 = "port"
	KeyUser                 = "user"
	KeyPath                 = "path"
	KeyHostKey              = "host_key"
	KeyPassword             = "password"
	KeyPrivateKey           = "private_key"
	KeyPrivateKeyPassphrase = "private_key_passphrase"
)

// Config locates a directory on an SSH server and says how to log in.
type Config struct {
	Host string // host name or address (required)
	Port int    // 0 means 22
	User string // login name (required)
	// Path is the storage's root on the server, absolute (required); it is
	// created when missing.
	Path string
	// HostKey is the server's public host key, as in known_hosts or
	// authorized_keys ("ssh-ed25519 AAAA…", ssh-keyscan prints it);
	// required: a server showing another key is refused.
	HostKey string
	// Password, or PrivateKey (PEM or OpenSSH format, encrypted with
	// PrivateKeyPassphrase when set), authenticates the user.
	Password, PrivateKey, PrivateKeyPassphrase string
	// Timeout bounds the connection and login; 0 means 15 s.
	Timeout time.Duration
}

// ConfigFrom reads a storage location's config map (keys Key*), naming
// the key of any bad value in a *storage.ConfigError.
func ConfigFrom(m map[string]string) (Config, error) {
	c := Config{Host: m[KeyHost], User: m[KeyUser], Path: m[KeyPath], HostKey: m[KeyHostKey], Password: m[KeyPassword],
		PrivateKey: m[KeyPrivateKey], PrivateKeyPassphrase: m[KeyPrivateKeyPassphrase]}
	if v := m[KeyPort]; v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return c, &storage.ConfigError{Key: KeyPort, Err: fmt.Errorf("%q: use a port number from 1 to 65535", v)}
		}
		c.Port = p
	}
	_, _, err := c.check()
	return c, err
}

// check validates c and returns its host key and login methods.
func (c *Config) check() (ssh.PublicKey, []ssh.AuthMethod, error) {
	switch {
	case c.Host == "":
		return nil, nil, &storage.ConfigError{Key: KeyHost, Err: errors.New("empty: name the SSH server")}
	case c.User == "":
		return nil, nil, &storage.ConfigError{Key: KeyUser, Err: errors.New("empty: name the user to log in as")}
	case !path.IsAbs(c.Path) || path.Clean(c.Path) != c.Path || c.Path == "/":
		return nil, nil, &storage.ConfigError{Key: KeyPath, Err: fmt.Errorf("%q: give an absolute, clean directory path other than / on the server", c.Path)}
	case c.HostKey == "":
		return nil, nil, &storage.ConfigError{Key: KeyHostKey, Err: errors.New("empty: pin the server's host key (the line ssh-keyscan -t ed25519 HOST prints, without the host name)")}
	case c.Password == "" && c.PrivateKey == "":
		return nil, nil, &storage.ConfigError{Key: KeyPassword, Err: errors.New("give a password or a private_key")}
	}
	hk, err := parseHostKey(c.HostKey)
	if err != nil {
		return nil, nil, &storage.ConfigError{Key: KeyHostKey, Err: err}
	}
	var auth []ssh.AuthMethod
	if c.PrivateKey != "" {
		var signer ssh.Signer
		if c.PrivateKeyPassphrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(c.PrivateKey), []byte(c.PrivateKeyPassphrase))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(c.PrivateKey))
		}
		if err != nil {
			return nil, nil, &storage.ConfigError{Key: KeyPrivateKey, Err: errors.New("not a private key this server can use (PEM or OpenSSH format; set private_key_passphrase if it is encrypted)")}
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if c.Password != "" {
		auth = append(auth, ssh.Password(c.Password))
	}
	return hk, auth, nil
}

// parseHostKey reads a known_hosts or authorized_keys line, or a bare
// "type base64" key.
func parseHostKey(s string) (ssh.PublicKey, error) {
	s = strings.TrimSpace(s)
	if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s)); err == nil {
		return k, nil
	}
	if _, _, k, _, _, err := ssh.ParseKnownHosts([]byte(s)); err == nil {
		return k, nil
	}
	return nil, errors.New("not an SSH public key: give the server's host key as ssh-keyscan prints it (\"ssh-ed25519 AAAA…\")")
}

// SFTP is a storage.Storage on a directory of an SSH server. It is safe
// for concurrent use; a lost connection is dialled again on the next call.
type SFTP struct {
	cfg      Config
	addr     string
	sshCfg   *ssh.ClientConfig
	root     string
	mu       sync.Mutex
	conn     *ssh.Client
	client   *sftp.Client
	tempSalt string
}

var (
	_ storage.Storage = (*SFTP)(nil)
	_ storage.Renamer = (*SFTP)(nil)
	_ storage.Aborter = (*SFTP)(nil)
)

// tempPrefix starts the names of files being written.
const tempPrefix = ".incomplete-"

// New connects and logs in (checking the pinned host key), creates the
// root directory when missing and returns the storage. A wrong host key,
// refused login or unreachable server fails here, naming the config key to
// fix.
func New(ctx context.Context, cfg Config) (*SFTP, error) {
	hk, auth, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		cfg.Port = 22
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	salt := make([]byte, 4)
	rand.Read(salt)
	s := &SFTP{cfg: cfg, addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), root: cfg.Path, tempSalt: hex.EncodeToString(salt),
		sshCfg: &ssh.ClientConfig{User: cfg.User, Auth: auth, HostKeyCallback: ssh.FixedHostKey(hk), Timeout: cfg.Timeout,
			HostKeyAlgorithms: []string{hk.Type()}}}
	c, err := s.sftp(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.MkdirAll(s.root); err != nil {
		return nil, &storage.ConfigError{Key: KeyPath, Err: fmt.Errorf("cannot create %s on %s: %v", s.root, s.addr, err)}
	}
	return s, nil
}

// sftp returns the live client, dialling when there is none.
func (s *SFTP) sftp(ctx context.Context) (*sftp.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	d := net.Dialer{Timeout: s.cfg.Timeout}
	nc, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, &storage.ConfigError{Key: KeyHost, Err: fmt.Errorf("cannot reach %s: %v", s.addr, err)}
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, s.addr, s.sshCfg)
	if err != nil {
		nc.Close()
		if strings.Contains(err.Error(), "host key mismatch") || strings.Contains(err.Error(), "no common algorithm for host key") {
			return nil, &storage.ConfigError{Key: KeyHostKey, Err: fmt.Errorf("%s showed another host key than the pinned one: check it is the right server, then update host_key", s.addr)}
		}
		key := KeyPassword
		if s.cfg.PrivateKey != "" {
			key = KeyPrivateKey
		}
		return nil, &storage.ConfigError{Key: key, Err: fmt.Errorf("login as %s on %s refused: %v", s.cfg.User, s.addr, err)}
	}
	conn := ssh.NewClient(sc, chans, reqs)
	client, err := sftp.NewClient(conn, sftp.UseConcurrentWrites(true))
	if err != nil {
		conn.Close()
		return nil, &storage.ConfigError{Key: KeyHost, Err: fmt.Errorf("%s has no SFTP subsystem: %v", s.addr, err)}
	}
	s.conn, s.client = conn, client
	go func() { // forget a connection once it is gone
		conn.Wait()
		s.mu.Lock()
		if s.client == client {
			s.client, s.conn = nil, nil
		}
		s.mu.Unlock()
	}()
	return client, nil
}

// lost reports whether err says the connection is gone.
func lost(err error) bool {
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// forget drops c when it is the live client, so the next call dials again.
func (s *SFTP) forget(c *sftp.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == c {
		s.client.Close()
		s.conn.Close()
		s.client, s.conn = nil, nil
	}
}

// with runs fn on the live client; when the connection turns out to be
// gone (the server restarted, the network dropped it), it dials again and
// runs fn once more. fn must be safe to repeat.
func (s *SFTP) with(ctx context.Context, fn func(c *sftp.Client) error) error {
	for attempt := 0; ; attempt++ {
		c, err := s.sftp(ctx)
		if err != nil {
			return err
		}
		err = fn(c)
		if err == nil || attempt == 1 || !lost(err) {
			return err
		}
		s.forget(c)
	}
}

// Close ends the connection.
func (s *SFTP) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	s.client.Close()
	err := s.conn.Close()
	s.client, s.conn = nil, nil
	return err
}

func (s *SFTP) path(key string) string { return path.Join(s.root, key) }

// notExist reports an error saying the path is not there, also when a
// file stands where a directory of the path should be (ENOTDIR, which
// servers report as a bare failure).
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist) ||
		(err != nil && strings.Contains(err.Error(), "not a directory"))
}

func fail(op, key string, err error) error {
	if notExist(err) {
		err = fmt.Errorf("%w: %v", storage.ErrNotFound, err)
	}
	return &storage.OpError{Op: op, Key: key, Err: err}
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	err error // the reader's own error
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// Put writes r to a temporary file beside key, then renames it into place
// (or, with IfNotExist, links it there, which fails when key exists).
func (s *SFTP) Put(ctx context.Context, key string, r io.Reader, opts *storage.PutOptions) error {
	if err := storage.ValidateKey(key); err != nil {
		return &storage.OpError{Op: "put", Key: key, Err: err}
	}
	dst := s.path(key)
	rnd := make([]byte, 8)
	rand.Read(rnd)
	tmp := path.Join(path.Dir(dst), tempPrefix+s.tempSalt+"-"+hex.EncodeToString(rnd)+"-"+path.Base(dst))
	var c *sftp.Client
	var f *sftp.File
	err := s.with(ctx, func(cl *sftp.Client) error { // nothing read from r yet: safe to repeat
		if err := cl.MkdirAll(path.Dir(dst)); err != nil {
			return err
		}
		var err error
		c = cl
		f, err = cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		return err
	})
	if err != nil {
		return fail("put", key, err)
	}
	src := &ctxReader{ctx: ctx, r: r}
	_, err = f.ReadFrom(src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if opts != nil && opts.IfNotExist {
			err = c.Link(tmp, dst)
			if err != nil {
				if _, serr := c.Lstat(dst); serr == nil {
					err = fmt.Errorf("%w: %s", storage.ErrExist, key)
				}
			}
			c.Remove(tmp)
		} else {
			err = c.PosixRename(tmp, dst)
		}
	}
	if err != nil {
		c.Remove(tmp)
		if lost(err) {
			s.forget(c)
		}
		switch {
		case src.err != nil:
			err = src.err
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return &storage.OpError{Op: "put", Key: key, Err: err}
	}
	return nil
}

// Open reads length bytes of key from offset (length < 0: to the end).
func (s *SFTP) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, &storage.OpError{Op: "open", Key: key, Err: err}
	}
	var f *sftp.File
	err := s.with(ctx, func(c *sftp.Client) error {
		var err error
		if f, err = c.Open(s.path(key)); err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil && !st.Mode().IsRegular() {
			err = fmt.Errorf("%w: not a file", fs.ErrNotExist)
		}
		if err == nil {
			_, err = f.Seek(offset, io.SeekStart)
		}
		if err != nil {
			f.Close()
		}
		return err
	})
	if err != nil {
		return nil, fail("open", key, err)
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// Stat describes key.
func (s *SFTP) Stat(ctx context.Context, key string) (storage.Object, error) {
	if err := storage.ValidateKey(key); err != nil {
		return storage.Object{}, &storage.OpError{Op: "stat", Key: key, Err: err}
	}
	var st os.FileInfo
	err := s.with(ctx, func(c *sftp.Client) error {
		var err error
		st, err = c.Stat(s.path(key))
		if err == nil && !st.Mode().IsRegular() {
			err = fmt.Errorf("%w: not a file", fs.ErrNotExist)
		}
		return err
	})
	if err != nil {
		return storage.Object{}, fail("stat", key, err)
	}
	return storage.Object{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// List returns every object whose key starts with prefix, sorted by key
// (files being written are left out).
func (s *SFTP) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return nil, &storage.OpError{Op: "list", Key: prefix, Err: err}
	}
	var out []storage.Object
	err := s.walk(ctx, prefix, func(key string, st os.FileInfo) {
		if !strings.HasPrefix(st.Name(), tempPrefix) && strings.HasPrefix(key, prefix) && storage.ValidateKey(key) == nil {
			out = append(out, storage.Object{Key: key, Size: st.Size(), ModTime: st.ModTime()})
		}
	})
	if err != nil {
		return nil, fail("list", prefix, err)
	}
	slices.SortFunc(out, func(a, b storage.Object) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// walk calls fn for every regular file under the deepest directory
// prefix names, with its path relative to the root.
func (s *SFTP) walk(ctx context.Context, prefix string, fn func(rel string, st os.FileInfo)) error {
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = s.path(prefix[:i])
	}
	type file struct {
		rel string
		st  os.FileInfo
	}
	var found []file
	err := s.with(ctx, func(c *sftp.Client) error {
		found = found[:0]
		for w := c.Walk(start); w.Step(); {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := w.Err(); err != nil {
				if notExist(err) {
					continue
				}
				return err
			}
			if w.Stat().Mode().IsRegular() {
				found = append(found, file{strings.TrimPrefix(w.Path(), s.root+"/"), w.Stat()})
			}
		}
		return nil
	})
	for _, f := range found {
		fn(f.rel, f.st)
	}
	return err
}

// Delete removes key; a missing key is no error.
func (s *SFTP) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return &storage.OpError{Op: "delete", Key: key, Err: err}
	}
	err := s.with(ctx, func(c *sftp.Client) error {
		err := c.Remove(s.path(key))
		if err == nil || notExist(err) {
			return nil
		}
		if st, serr := c.Lstat(s.path(key)); serr == nil && st.IsDir() {
			return nil // a folder of keys, not a key
		}
		return err
	})
	if err != nil {
		return fail("delete", key, err)
	}
	return nil
}

// Rename moves from to to, replacing to (posix-rename@openssh.com).
func (s *SFTP) Rename(ctx context.Context, from, to string) error {
	for _, k := range []string{from, to} {
		if err := storage.ValidateKey(k); err != nil {
			return &storage.OpError{Op: "rename", Key: k, Err: err}
		}
	}
	if _, err := s.Stat(ctx, from); err != nil {
		return &storage.OpError{Op: "rename", Key: from, Err: errors.Unwrap(err)}
	}
	err := s.with(ctx, func(c *sftp.Client) error {
		if err := c.MkdirAll(path.Dir(s.path(to))); err != nil {
			return err
		}
		return c.PosixRename(s.path(from), s.path(to))
	})
	if err != nil {
		return fail("rename", from, err)
	}
	return nil
}

// AbortIncomplete removes the temporary files that writes of keys under
// prefix left when their process died.
func (s *SFTP) AbortIncomplete(ctx context.Context, prefix string) error {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return &storage.OpError{Op: "abort", Key: prefix, Err: err}
	}
	var temps []string
	err := s.walk(ctx, prefix, func(rel string, st os.FileInfo) {
		dir, base := path.Split(rel)
		// .incomplete-SALT-RANDOM-BASE: the key's base name after two
		// dash-separated fields.
		parts := strings.SplitN(strings.TrimPrefix(base, tempPrefix), "-", 3)
		if strings.HasPrefix(base, tempPrefix) && len(parts) == 3 && strings.HasPrefix(dir+parts[2], prefix) {
			temps = append(temps, rel)
		}
	})
	if err != nil {
		return fail("abort", prefix, err)
	}
	var errs []error
	for _, rel := range temps {
		if err := s.with(ctx, func(c *sftp.Client) error { return c.Remove(s.path(rel)) }); err != nil && !notExist(err) {
			errs = append(errs, fail("abort", rel, err))
		}
	}
	return errors.Join(errs...)
}
