package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func newTestSealer(t *testing.T) *Sealer {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealerRoundTrip(t *testing.T) {
	t.Parallel()
	s := newTestSealer(t)
	for _, pt := range [][]byte{nil, []byte("p"), []byte("correct horse battery staple"), bytes.Repeat([]byte{0}, 4096)} {
		a, err := s.Seal(pt)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := s.Seal(pt)
		if bytes.Equal(a, b) {
			t.Error("sealing twice gave the same bytes: the nonce is not random")
		}
		// A short plaintext may appear in random bytes by chance (a 1-byte one
		// does in ~6% of sealings): only a long one proves it is not in clear.
		if len(pt) >= 8 && bytes.Contains(a, pt) {
			t.Error("sealed data contains the plaintext")
		}
		got, err := s.Open(a)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("Open(Seal(%q)) = %q, %v", pt, got, err)
		}
	}
}

func TestSealerDetectsTampering(t *testing.T) {
	t.Parallel()
	s := newTestSealer(t)
	sealed, err := s.Seal([]byte("db password"))
	if err != nil {
		t.Fatal(err)
	}
	// Every single-bit flip, in the nonce, the ciphertext and the tag.
	for i := range sealed {
		for bit := range 8 {
			bad := bytes.Clone(sealed)
			bad[i] ^= 1 << bit
			if pt, err := s.Open(bad); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("flipping bit %d of byte %d: Open = %q, %v; want ErrDecrypt", bit, i, pt, err)
			}
		}
	}
	for _, bad := range [][]byte{nil, sealed[:5], sealed[:len(sealed)-1], append(bytes.Clone(sealed), 0)} {
		if _, err := s.Open(bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("Open of %d bytes: err = %v, want ErrDecrypt", len(bad), err)
		}
	}
	if _, err := newTestSealer(t).Open(sealed); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open with another key: err = %v, want ErrDecrypt", err)
	}
}

func TestNewSealerKeyErrors(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 31, 33, 44} {
		_, err := NewSealer(make([]byte, n))
		if err == nil {
			t.Errorf("NewSealer with a %d-byte key succeeded", n)
			continue
		}
		if !strings.Contains(err.Error(), "openssl rand -base64 32") || !strings.Contains(err.Error(), SecretKeyEnv) {
			t.Errorf("error %q does not say how to make a key", err)
		}
	}
}

func TestDecodeSecretKey(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	rand.Read(key)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		got, err := DecodeSecretKey(" " + enc.EncodeToString(key) + "\n")
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("DecodeSecretKey = %x, %v; want %x", got, err, key)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := DecodeSecretKey(bad); err == nil || !strings.Contains(err.Error(), "openssl rand -base64 32") {
			t.Errorf("DecodeSecretKey(%q) = %v, want an error saying how to make a key", bad, err)
		}
	}
}
