package testsvc

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SFTPServer is a real SSH server with the SFTP subsystem on loopback, in
// this process (x/crypto/ssh and pkg/sftp's server, which has OpenSSH's
// posix-rename and hardlink extensions). It serves the real file system:
// Dir is a temporary directory for the tests to use as the storage root.
type SFTPServer struct {
	Host     string
	Port     int
	User     string
	Password string
	// HostKey is its public host key in authorized_keys form, as
	// ssh-keyscan prints it (without the host name).
	HostKey string
	// ClientKey is a private key (OpenSSH PEM) the server also accepts
	// for User.
	ClientKey string
	Dir       string

	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// StartSFTP starts the server on a free loopback port; it stops when t
// ends.
func StartSFTP(t testing.TB) *SFTPServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "test client")
	if err != nil {
		t.Fatal(err)
	}
	sshClientPub, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	s := &SFTPServer{Host: "127.0.0.1", User: "backup", Password: "sftp-pw-" + uuid.NewString()[:8], Dir: t.TempDir(),
		HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))), conns: map[net.Conn]bool{},
		ClientKey: string(pem.EncodeToMemory(block))}
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if c.User() == s.User && string(pw) == s.Password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == s.User && string(k.Marshal()) == string(sshClientPub.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(hostSigner)
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.Port = s.ln.Addr().(*net.TCPAddr).Port
	go s.serve(cfg)
	t.Cleanup(func() { s.ln.Close(); s.DropConnections() })
	return s
}

// DropConnections closes every open connection, as a network failure or
// a restarted server would; new connections are still accepted.
func (s *SFTPServer) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

func (s *SFTPServer) serve(cfg *ssh.ServerConfig) {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[nc] = true
		s.mu.Unlock()
		go func() {
			defer func() { s.mu.Lock(); delete(s.conns, nc); s.mu.Unlock(); nc.Close() }()
			_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
			if err != nil {
				return
			}
			go ssh.DiscardRequests(reqs)
			for nch := range chans {
				if nch.ChannelType() != "session" {
					nch.Reject(ssh.UnknownChannelType, "only sessions")
					continue
				}
				ch, reqs, err := nch.Accept()
				if err != nil {
					return
				}
				go func() {
					for req := range reqs {
						ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
						req.Reply(ok, nil)
						if ok {
							srv, err := sftp.NewServer(ch)
							if err == nil {
								if err := srv.Serve(); err == io.EOF || err == nil {
									srv.Close()
								}
							}
							ch.Close()
						}
					}
				}()
			}
		}()
	}
}
