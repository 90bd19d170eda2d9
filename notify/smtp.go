package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// TLS modes of SMTP.
const (
	SMTPStartTLS = "starttls" // plain connection upgraded with STARTTLS, which the server must offer (default; port 587)
	SMTPTLS      = "tls"      // implicit TLS from the first byte (port 465)
	SMTPNone     = "none"     // no TLS (port 25): only for a relay on a trusted network
)

// SMTP is a Notifier sending e-mail through an SMTP server with the
// standard library's client.
//
// Credentials are sent (AUTH PLAIN) only over TLS or to localhost; the
// password never appears in an error.
type SMTP struct {
	Host     string
	Port     int // 0: 587 for starttls, 465 for tls, 25 for none
	Username string
	Password string
	From     string   // "DataGuardian <backup@example.com>"
	To       []string // at least one address
	TLS      string   // SMTPStartTLS (default), SMTPTLS or SMTPNone
	Timeout  time.Duration
	// Templates renders subject and body with the "email" channel's
	// templates; nil means the built-in defaults.
	Templates *Templates
	// TLSConfig is cloned for the TLS handshake; nil means the system roots
	// and ServerName = Host.
	TLSConfig *tls.Config
	// HeloName is sent with EHLO; empty means "localhost".
	HeloName string
}

var _ Notifier = (*SMTP)(nil)

// Name returns "smtp".
func (*SMTP) Name() string { return "smtp" }

const defaultSMTPTimeout = 30 * time.Second

func (s *SMTP) mode() string {
	if s.TLS == "" {
		return SMTPStartTLS
	}
	return s.TLS
}

func (s *SMTP) port() int {
	if s.Port != 0 {
		return s.Port
	}
	switch s.mode() {
	case SMTPTLS:
		return 465
	case SMTPNone:
		return 25
	}
	return 587
}

func (s *SMTP) validate() (from *mail.Address, to []*mail.Address, err error) {
	switch s.mode() {
	case SMTPStartTLS, SMTPTLS, SMTPNone:
	default:
		return nil, nil, fmt.Errorf("tls %q: use %q, %q or %q", s.TLS, SMTPStartTLS, SMTPTLS, SMTPNone)
	}
	if s.Host == "" {
		return nil, nil, errors.New("host is empty: set the SMTP server's host name")
	}
	if from, err = mail.ParseAddress(s.From); err != nil {
		return nil, nil, fmt.Errorf("from %q: %v", s.From, err)
	}
	if len(s.To) == 0 {
		return nil, nil, errors.New("no recipients: set at least one address in to")
	}
	for _, a := range s.To {
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, nil, fmt.Errorf("to %q: %v", a, err)
		}
		to = append(to, addr)
	}
	return from, to, nil
}

// Notify renders n with the e-mail templates and sends it to every
// recipient in one transaction.
func (s *SMTP) Notify(ctx context.Context, n Notification) error {
	from, to, err := s.validate()
	if err != nil {
		return fmt.Errorf("%w: smtp: %v", ErrDelivery, err)
	}
	subject, body, tmplErr := render(s.Templates, n, ChannelEmail)
	msg, err := buildMessage(from, to, subject, body, n)
	if err != nil {
		return fmt.Errorf("%w: smtp: build message: %v", ErrDelivery, err)
	}
	if err := s.send(ctx, from.Address, to, msg); err != nil {
		return err
	}
	return tmplErr
}

func (s *SMTP) send(ctx context.Context, from string, to []*mail.Address, msg []byte) (err error) {
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.port()))
	step := "connect"
	defer func() {
		if err != nil {
			cerr := ctx.Err()
			if d, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(d) {
				cerr = context.DeadlineExceeded // the conn deadline fired first
			}
			if cerr != nil {
				err = fmt.Errorf("%w: smtp %s %s: %w", ErrDelivery, addr, step, cerr)
				return
			}
			err = fmt.Errorf("%w: smtp %s %s: %w", ErrDelivery, addr, step, redact(err, s.Password))
		}
	}()

	timeout := s.Timeout
	if timeout <= 0 {
		timeout = defaultSMTPTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialer := &net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	tlsConfig := s.tlsConfig()
	isTLS := false
	if s.mode() == SMTPTLS {
		step = "tls handshake"
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		conn, isTLS = tc, true
	}
	step = "greeting"
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	step = "ehlo"
	helo := s.HeloName
	if helo == "" {
		helo = "localhost"
	}
	if err := c.Hello(helo); err != nil {
		return err
	}
	if s.mode() == SMTPStartTLS {
		step = "starttls"
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("server does not offer STARTTLS; use tls %q for implicit TLS (port 465) or %q for a trusted relay", SMTPTLS, SMTPNone)
		}
		if err := c.StartTLS(tlsConfig); err != nil {
			return err
		}
		isTLS = true
	}
	if s.Username != "" {
		step = "auth"
		if !isTLS && !isLocalhost(s.Host) {
			return fmt.Errorf("refusing to send the password without TLS to %s; use tls %q or %q", s.Host, SMTPStartTLS, SMTPTLS)
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("server does not offer AUTH; clear the username or use the submission port")
		}
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, s.Host)); err != nil {
			return err
		}
	}
	step = "mail from"
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, a := range to {
		step = "rcpt to " + a.Address
		if err := c.Rcpt(a.Address); err != nil {
			return err
		}
	}
	step = "data"
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	step = "quit"
	_ = c.Quit() // the message is accepted; a failing QUIT changes nothing
	return nil
}

func (s *SMTP) tlsConfig() *tls.Config {
	var c *tls.Config
	if s.TLSConfig != nil {
		c = s.TLSConfig.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = s.Host
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// isLocalhost matches net/smtp's rule for sending PLAIN credentials without
// TLS.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// buildMessage writes an RFC 5322 message with a UTF-8, quoted-printable
// plain-text body.
func buildMessage(from *mail.Address, to []*mail.Address, subject, body string, n Notification) ([]byte, error) {
	var b bytes.Buffer
	date := n.CreatedAt
	if date.IsZero() {
		date = time.Now()
	}
	domain := "dataguardian.local"
	if i := strings.LastIndexByte(from.Address, '@'); i >= 0 && i < len(from.Address)-1 {
		domain = from.Address[i+1:]
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	var toHdr []string
	for _, a := range to {
		toHdr = append(toHdr, a.String())
	}
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", from.String())
	header("To", strings.Join(toHdr, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id)+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated")
	if n.Type != "" && typeName.MatchString(n.Type) {
		header("X-DataGuardian-Type", n.Type)
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(body, "\r\n", "\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

// redact returns err with every occurrence of secret in its message
// replaced, keeping it unwrappable.
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		// Replacing a secret of one to three characters would shred the
		// message without hiding anything worth hiding.
		if len(s) >= 4 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, redactedValue)
			changed = true
		}
	}
	if !changed {
		return err
	}
	// The original is not wrapped: its message holds the secret.
	return errors.New(msg)
}
