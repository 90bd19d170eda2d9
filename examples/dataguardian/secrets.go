package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/dataguardian/dataguardian/drivers"
)

// minSecretLen is the shortest password the output redaction replaces: a
// one- or two-letter password would garble every message.
const minSecretLen = 3

// secrets are the passwords of this run, replaced in every line printed.
type secrets struct {
	mu   sync.Mutex
	list []string
}

func (s *secrets) add(pw string) {
	if len(pw) < minSecretLen {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, pw)
}

func (s *secrets) redact(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pw := range s.list {
		text = strings.ReplaceAll(text, pw, "xxxxx")
	}
	return text
}

// redactingWriter is stdout or stderr: it writes whole messages under a
// lock shared by both, with every known password replaced. It also keeps
// track of a progress status line left on a terminal without a newline.
type redactingWriter struct {
	w       io.Writer
	mu      *sync.Mutex
	secrets *secrets
	status  bool // a status line is on screen and must be cleared first
}

func (r *redactingWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clearStatus()
	if _, err := io.WriteString(r.w, r.secrets.redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// line writes s and a newline.
func (r *redactingWriter) line(s string) { fmt.Fprintln(r, s) }

// setStatus replaces the status line on a terminal with s.
func (r *redactingWriter) setStatus(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clearStatus()
	io.WriteString(r.w, r.secrets.redact(s))
	r.status = true
}

func (r *redactingWriter) clearStatus() {
	if r.status {
		io.WriteString(r.w, "\r\033[K")
		r.status = false
	}
}

// sourceFlags are the flags naming a datasource: --type, --dsn and
// --password-file.
type sourceFlags struct {
	typ, dsn, passwordFile string
}

func (f *sourceFlags) register(fs *flag.FlagSet, typeUsage, dsnUsage string) {
	fs.StringVar(&f.typ, "type", "", typeUsage)
	fs.StringVar(&f.dsn, "dsn", "", dsnUsage+"; a password here is visible in ps: prefer "+envPassword+" or --password-file")
	fs.StringVar(&f.passwordFile, "password-file", "", "read the database password from the first line of this file (overrides the DSN's and "+envPassword+")")
}

// source parses the DSN of f as type typ and completes it with the
// password from --password-file, else DG_PASSWORD, else the DSN itself
// (with a warning: it is visible in `ps`). Every password seen is redacted
// from all later output.
func (c *cli) source(typ string, f *sourceFlags) (drivers.Source, error) {
	src, err := drivers.ParseDSN(typ, f.dsn)
	if err != nil {
		return src, &usageError{msg: "--dsn: " + err.Error()}
	}
	c.secrets.add(src.Password)
	if src.Password != "" {
		c.stderr.line("warning: the password in --dsn is visible to other users in `ps` and in shell history; set " + envPassword + " or use --password-file instead")
	}
	switch env := c.getenv(envPassword); {
	case f.passwordFile != "":
		if src.Password, err = readPasswordFile(f.passwordFile); err != nil {
			return src, err
		}
	case env != "":
		src.Password = env
	}
	c.secrets.add(src.Password)
	return src, nil
}

func readPasswordFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("read --password-file: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read --password-file %s: %w", name, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("read --password-file %s: the first line is empty: put the password on it", name)
	}
	return line, nil
}
