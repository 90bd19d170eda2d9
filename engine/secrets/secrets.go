package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrDecrypt reports sealed data that cannot be opened: the secret key is
// not the one it was sealed with, or the data was altered.
var ErrDecrypt = errors.New("decrypt secret: wrong secret key or altered data")

// SecretKeyEnv is the environment variable the reference binary reads the
// secret key from (base64 of 32 random bytes).
const SecretKeyEnv = "DG_SECRET_KEY"

// SecretKeyHelp tells an operator how to make a key.
const SecretKeyHelp = "generate one with `openssl rand -base64 32` and set it in " + SecretKeyEnv

// Sealer encrypts secrets at rest (datasource passwords, SMTP passwords)
// with AES-256-GCM. Sealed data is nonce (12 random bytes) || ciphertext ||
// tag, so sealing the same plaintext twice gives different bytes. It is
// safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for key, which must be 32 bytes.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key must be 32 bytes, got %d: %s", len(key), SecretKeyHelp)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("create cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("create cipher: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// DecodeSecretKey decodes a base64 (standard or URL alphabet, padded or
// not) secret key as produced by `openssl rand -base64 32`.
func DecodeSecretKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("secret key is empty: %s", SecretKeyHelp)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != 32 {
				return nil, fmt.Errorf("secret key must decode to 32 bytes, got %d: %s", len(key), SecretKeyHelp)
			}
			return key, nil
		}
	}
	return nil, fmt.Errorf("secret key is not base64: %s", SecretKeyHelp)
}

// Seal encrypts plaintext.
func (s *Sealer) Seal(plaintext []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal secret: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, nil), nil
}

// Open decrypts data made by Seal. Data sealed with another key, truncated
// or altered gives an error matching ErrDecrypt.
func (s *Sealer) Open(sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("%w (%d bytes is too short)", ErrDecrypt, len(sealed))
	}
	plaintext, err := s.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return plaintext, nil
}
