package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// mailServer is a real SMTP server (emersion/go-smtp) on a loopback port
// that records what it receives.
type mailServer struct {
	Addr string
	Host string
	Port int

	mu       sync.Mutex
	msgs     []receivedMail
	authUser string
	authPass string
	authSeen bool
	srv      *gosmtp.Server
}

type receivedMail struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	Auth string
}

type mailSession struct {
	s    *mailServer
	c    *gosmtp.Conn
	auth string
	cur  receivedMail
}

func (m *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (m *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		m.s.mu.Lock()
		m.s.authSeen = true
		m.s.mu.Unlock()
		if user != m.s.authUser || pass != m.s.authPass {
			// A hostile or careless server echoing the password.
			return errors.New("bad credentials " + user + ":" + pass)
		}
		m.auth = user
		return nil
	}), nil
}

func (m *mailSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if m.s.authUser != "" && m.auth == "" {
		return gosmtp.ErrAuthRequired
	}
	m.cur = receivedMail{From: from, Auth: m.auth}
	_, m.cur.TLS = m.c.TLSConnectionState()
	return nil
}

func (m *mailSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	m.cur.To = append(m.cur.To, to)
	return nil
}

func (m *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.cur.Data = b
	m.s.mu.Lock()
	m.s.msgs = append(m.s.msgs, m.cur)
	m.s.mu.Unlock()
	return nil
}

func (m *mailSession) Reset()        {}
func (m *mailSession) Logout() error { return nil }

type mailServerOptions struct {
	ip          string      // default 127.0.0.1
	tlsConfig   *tls.Config // enables STARTTLS
	implicitTLS bool
	user, pass  string // require AUTH PLAIN
}

func startMailServer(t *testing.T, o mailServerOptions) *mailServer {
	t.Helper()
	if o.ip == "" {
		o.ip = "127.0.0.1"
	}
	ms := &mailServer{authUser: o.user, authPass: o.pass}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &mailSession{s: ms, c: c}, nil
	}))
	srv.Domain = "mail.test"
	srv.AllowInsecureAuth = true // the client, not the server, must refuse
	srv.ReadTimeout = 5 * time.Second
	srv.WriteTimeout = 5 * time.Second
	srv.ErrorLog = newTestLogger(t)
	var l net.Listener
	var err error
	if o.implicitTLS {
		l, err = tls.Listen("tcp", o.ip+":0", o.tlsConfig)
	} else {
		srv.TLSConfig = o.tlsConfig
		l, err = net.Listen("tcp", o.ip+":0")
	}
	if err != nil {
		t.Skipf("listen on %s: %v", o.ip, err)
	}
	ms.srv = srv
	ms.Addr = l.Addr().String()
	ms.Host = o.ip
	ms.Port = l.Addr().(*net.TCPAddr).Port
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ms
}

func (ms *mailServer) messages() []receivedMail {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]receivedMail(nil), ms.msgs...)
}

// testLogger passes the server's log to t until the test's cleanup starts;
// the server's goroutines may still log while they wind down after that.
type testLogger struct {
	t    *testing.T
	mu   *sync.Mutex
	done *bool
}

func newTestLogger(t *testing.T) testLogger {
	l := testLogger{t: t, mu: new(sync.Mutex), done: new(bool)}
	t.Cleanup(func() { l.mu.Lock(); *l.done = true; l.mu.Unlock() })
	return l
}

func (l testLogger) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !*l.done {
		l.t.Logf(format, v...)
	}
}

func (l testLogger) Println(v ...any) { l.Printf("%s", fmt.Sprintln(v...)) }

// selfSigned returns a server config for 127.0.0.1 and a client config
// trusting it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mail.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return server, &tls.Config{RootCAs: pool}
}

func backupCompleted() Notification {
	return Notification{
		Type: BackupCompleted, Severity: Info,
		Title: "Backup do job Produção", Message: "3 tabelas, 1.2 GiB",
		EntityType: "execution", EntityID: "e-1",
		CreatedAt: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
		Data:      map[string]any{"job_name": "Produção diária", "size_bytes": 1536, "duration_seconds": 90},
	}
}

func TestSMTPDeliversWithHeadersAndTemplate(t *testing.T) {
	ms := startMailServer(t, mailServerOptions{})
	s := &SMTP{Host: ms.Host, Port: ms.Port, TLS: SMTPNone, From: "DataGuardian <dg@example.com>", To: []string{"ops@example.com", "Ana <ana@example.com>"}, Timeout: 5 * time.Second}
	if err := s.Notify(context.Background(), backupCompleted()); err != nil {
		t.Fatal(err)
	}
	got := ms.messages()
	if len(got) != 1 {
		t.Fatalf("got %d messages, want 1", len(got))
	}
	m := got[0]
	if m.From != "dg@example.com" || strings.Join(m.To, ",") != "ops@example.com,ana@example.com" {
		t.Fatalf("envelope = %q → %q", m.From, m.To)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if subject != "[DataGuardian] Backup concluído: Produção diária" {
		t.Errorf("subject = %q", subject)
	}
	if raw := msg.Header.Get("Subject"); !strings.HasPrefix(raw, "=?utf-8?q?") {
		t.Errorf("raw subject %q is not Q-encoded", raw)
	}
	for k, want := range map[string]string{
		"From":                      `"DataGuardian" <dg@example.com>`,
		"To":                        `<ops@example.com>, "Ana" <ana@example.com>`,
		"Mime-Version":              "1.0",
		"Content-Type":              `text/plain; charset="utf-8"`,
		"Content-Transfer-Encoding": "quoted-printable",
		"X-Dataguardian-Type":       BackupCompleted,
		"Auto-Submitted":            "auto-generated",
	} {
		if g := msg.Header.Get(k); g != want {
			t.Errorf("%s = %q, want %q", k, g, want)
		}
	}
	if d, err := msg.Header.Date(); err != nil || !d.Equal(backupCompleted().CreatedAt) {
		t.Errorf("Date = %v, %v", d, err)
	}
	if id := msg.Header.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID = %q", id)
	}
	body := decodeQP(t, msg.Body)
	for _, want := range []string{"Backup concluído", "Backup do job Produção", "Tamanho: 1.5 KiB", "Duração: 1m30s", "Data: 04/03/2026 05:06:07 UTC"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func TestSMTPCustomTemplate(t *testing.T) {
	ms := startMailServer(t, mailServerOptions{})
	tm := NewTemplates()
	if err := tm.Set(BackupFailed, ChannelEmail, 1, "ALERTA {{upper .Title}} ✓", "Erro: {{.Data.error}}"); err != nil {
		t.Fatal(err)
	}
	s := &SMTP{Host: ms.Host, Port: ms.Port, TLS: SMTPNone, From: "dg@example.com", To: []string{"ops@example.com"}, Templates: tm}
	n := Notification{Type: BackupFailed, Severity: Critical, Title: "job açaí", Data: map[string]any{"error": "disco cheio"}}
	if err := s.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(ms.messages()[0].Data)))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subject != "ALERTA JOB AÇAÍ ✓" {
		t.Errorf("subject = %q", subject)
	}
	if body := decodeQP(t, msg.Body); body != "Erro: disco cheio" {
		t.Errorf("body = %q", body)
	}
}

func TestSMTPAuthOnlyOverTLSOrLocalhost(t *testing.T) {
	t.Run("plaintext to localhost", func(t *testing.T) {
		ms := startMailServer(t, mailServerOptions{user: "dg", pass: "s3cret-pw"})
		s := &SMTP{Host: "127.0.0.1", Port: ms.Port, TLS: SMTPNone, Username: "dg", Password: "s3cret-pw", From: "dg@example.com", To: []string{"ops@example.com"}}
		if err := s.Notify(context.Background(), backupCompleted()); err != nil {
			t.Fatal(err)
		}
		if m := ms.messages(); len(m) != 1 || m[0].Auth != "dg" || m[0].TLS {
			t.Fatalf("messages = %+v", m)
		}
	})
	t.Run("plaintext to another host is refused", func(t *testing.T) {
		ms := startMailServer(t, mailServerOptions{ip: "127.0.0.2", user: "dg", pass: "s3cret-pw"})
		s := &SMTP{Host: ms.Host, Port: ms.Port, TLS: SMTPNone, Username: "dg", Password: "s3cret-pw", From: "dg@example.com", To: []string{"ops@example.com"}}
		err := s.Notify(context.Background(), backupCompleted())
		if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "without TLS") {
			t.Fatalf("err = %v, want a refusal to authenticate without TLS", err)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Fatalf("error leaks the password: %v", err)
		}
		ms.mu.Lock()
		defer ms.mu.Unlock()
		if ms.authSeen || len(ms.msgs) != 0 {
			t.Fatal("the server received credentials or a message")
		}
	})
	t.Run("starttls", func(t *testing.T) {
		srvTLS, cliTLS := selfSigned(t)
		ms := startMailServer(t, mailServerOptions{tlsConfig: srvTLS, user: "dg", pass: "s3cret-pw"})
		s := &SMTP{Host: ms.Host, Port: ms.Port, Username: "dg", Password: "s3cret-pw", From: "dg@example.com", To: []string{"ops@example.com"}, TLSConfig: cliTLS}
		if err := s.Notify(context.Background(), backupCompleted()); err != nil {
			t.Fatal(err)
		}
		if m := ms.messages(); len(m) != 1 || !m[0].TLS || m[0].Auth != "dg" {
			t.Fatalf("messages = %+v", m)
		}
	})
	t.Run("implicit tls", func(t *testing.T) {
		srvTLS, cliTLS := selfSigned(t)
		ms := startMailServer(t, mailServerOptions{tlsConfig: srvTLS, implicitTLS: true, user: "dg", pass: "s3cret-pw"})
		s := &SMTP{Host: ms.Host, Port: ms.Port, TLS: SMTPTLS, Username: "dg", Password: "s3cret-pw", From: "dg@example.com", To: []string{"ops@example.com"}, TLSConfig: cliTLS}
		if err := s.Notify(context.Background(), backupCompleted()); err != nil {
			t.Fatal(err)
		}
		if m := ms.messages(); len(m) != 1 || !m[0].TLS {
			t.Fatalf("messages = %+v", m)
		}
	})
	t.Run("starttls required but not offered", func(t *testing.T) {
		ms := startMailServer(t, mailServerOptions{})
		s := &SMTP{Host: ms.Host, Port: ms.Port, From: "dg@example.com", To: []string{"ops@example.com"}}
		err := s.Notify(context.Background(), backupCompleted())
		if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("err = %v", err)
		}
		if len(ms.messages()) != 0 {
			t.Fatal("message sent without STARTTLS")
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srvTLS, _ := selfSigned(t)
		ms := startMailServer(t, mailServerOptions{tlsConfig: srvTLS})
		s := &SMTP{Host: ms.Host, Port: ms.Port, From: "dg@example.com", To: []string{"ops@example.com"}}
		if err := s.Notify(context.Background(), backupCompleted()); !errors.Is(err, ErrDelivery) {
			t.Fatalf("err = %v, want a certificate error", err)
		}
	})
}

func TestSMTPWrongPasswordNotInError(t *testing.T) {
	ms := startMailServer(t, mailServerOptions{user: "dg", pass: "right"})
	s := &SMTP{Host: "localhost", Port: ms.Port, TLS: SMTPNone, Username: "dg", Password: "wrong-Pa55", From: "dg@example.com", To: []string{"ops@example.com"}}
	err := s.Notify(context.Background(), backupCompleted())
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "auth") {
		t.Fatalf("err = %v, want an auth failure", err)
	}
	if strings.Contains(err.Error(), "wrong-Pa55") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestSMTPContextCancelStopsHungServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // accepts and never greets
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s := &SMTP{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, TLS: SMTPNone, From: "dg@example.com", To: []string{"ops@example.com"}}
	start := time.Now()
	err = s.Notify(ctx, backupCompleted())
	if !errors.Is(err, ErrDelivery) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestSMTPInvalidConfig(t *testing.T) {
	for _, s := range []*SMTP{
		{From: "dg@example.com", To: []string{"a@example.com"}},
		{Host: "h", From: "not an address", To: []string{"a@example.com"}},
		{Host: "h", From: "dg@example.com"},
		{Host: "h", From: "dg@example.com", To: []string{"a@example.com"}, TLS: "ssl"},
	} {
		if err := s.Notify(context.Background(), backupCompleted()); !errors.Is(err, ErrDelivery) {
			t.Errorf("%+v: err = %v", s, err)
		}
	}
}

func decodeQP(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(quotedprintable.NewReader(r))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\r\n", "\n"))
}
