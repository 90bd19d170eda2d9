package manifest

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// AgeFormat is Encryption.Format of a backup encrypted with age
// (https://age-encryption.org/v1): the compressed stream, before it is
// split, so `cat parts | age -d -i key.txt | gunzip` recovers it.
const AgeFormat = "age"

// ErrNoIdentity reports an encrypted backup that none of the given keys
// opens; the error names the recipients it was encrypted to.
var ErrNoIdentity = errors.New("no key to decrypt the backup")

// Encryption, in a manifest, says how the backup is encrypted and to whom:
// public keys only, never a secret.
type Encryption struct {
	Format string `json:"format"` // AgeFormat
	// Recipients are the age X25519 public keys ("age1…") the backup is
	// encrypted to; any one's identity (secret key) decrypts it.
	Recipients []string `json:"recipients,omitempty"`
	// Passphrase is true when the backup is encrypted with a passphrase
	// (age's scrypt recipient) instead.
	Passphrase bool `json:"passphrase,omitempty"`
}

// Encrypt says to whom WriteOptions.Encrypt encrypts a backup: to age
// public keys, or with a passphrase (not both: age allows a passphrase
// only alone).
type Encrypt struct {
	Recipients []string // "age1…" X25519 public keys
	Passphrase string
}

// CheckRecipient reports whether s is an age X25519 public key ("age1…");
// the error says what to give instead.
// The error never repeats s, which may be a secret key given by mistake.
func CheckRecipient(s string) error {
	if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s)), "AGE-SECRET-KEY-") {
		return errors.New("this is an age secret key (identity), which must stay with whoever restores: give its public key (age-keygen -y KEY.txt prints it)")
	}
	if _, err := age.ParseX25519Recipient(s); err != nil {
		return errors.New("not an age public key: give the \"age1…\" line age-keygen prints as \"Public key\"")
	}
	return nil
}

// recipients returns the age recipients of e and what the manifest says of
// them.
func (e *Encrypt) recipients() ([]age.Recipient, *Encryption, error) {
	switch {
	case e.Passphrase != "" && len(e.Recipients) > 0:
		return nil, nil, fmt.Errorf("%w: encrypt to public keys or with a passphrase, not both", ErrInvalidOptions)
	case e.Passphrase != "":
		r, err := age.NewScryptRecipient(e.Passphrase)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: passphrase: %v", ErrInvalidOptions, err)
		}
		return []age.Recipient{r}, &Encryption{Format: AgeFormat, Passphrase: true}, nil
	case len(e.Recipients) == 0:
		return nil, nil, fmt.Errorf("%w: encryption needs at least one age public key or a passphrase", ErrInvalidOptions)
	}
	rs := make([]age.Recipient, 0, len(e.Recipients))
	for _, s := range e.Recipients {
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: recipient %d: %v", ErrInvalidOptions, len(rs)+1, CheckRecipient(s))
		}
		rs = append(rs, r)
	}
	return rs, &Encryption{Format: AgeFormat, Recipients: append([]string(nil), e.Recipients...)}, nil
}

// encryptTo returns a writer encrypting into dst for e (Close writes the
// last chunk, and does not close dst).
func encryptTo(dst io.Writer, e *Encrypt) (io.WriteCloser, *Encryption, error) {
	rs, info, err := e.recipients()
	if err != nil {
		return nil, nil, err
	}
	w, err := age.Encrypt(dst, rs...)
	if err != nil {
		return nil, nil, fmt.Errorf("start encryption: %w", err)
	}
	return w, info, nil
}

// ParseIdentities reads age identities (secret keys, "AGE-SECRET-KEY-1…"
// lines, comments allowed) as age-keygen writes them to a key file.
func ParseIdentities(r io.Reader) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(r)
	if err != nil {
		return nil, fmt.Errorf("read age identities: %w", err)
	}
	return ids, nil
}

// ReadOption configures how a backup is read (Read, Stream, OpenStream).
type ReadOption func(*readOptions)

type readOptions struct {
	identities []age.Identity
}

// WithIdentities gives the keys that may decrypt an encrypted backup:
// age identities (see ParseIdentities) or age.NewScryptIdentity of a
// passphrase.
func WithIdentities(ids ...age.Identity) ReadOption {
	return func(o *readOptions) { o.identities = append(o.identities, ids...) }
}

// decryptFrom returns the decrypted stream of src, a backup encrypted as
// e says, or an error matching ErrNoIdentity naming who can decrypt it.
// It reads the age header at once, so a missing key is known before any
// byte reaches a restore.
func decryptFrom(src io.Reader, e *Encryption, ids []age.Identity) (io.Reader, error) {
	if e.Format != AgeFormat {
		return nil, fmt.Errorf("%w: encryption %q: this DataGuardian reads %q", ErrInvalidManifest, e.Format, AgeFormat)
	}
	if len(ids) == 0 {
		return nil, e.noKey()
	}
	r, err := age.Decrypt(src, ids...)
	var nomatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &nomatch):
		return nil, fmt.Errorf("%w: it is encrypted %s, and none of the %d key(s) given is one of them", ErrNoIdentity, e.to(), len(ids))
	case err != nil:
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return r, nil
}

func (e *Encryption) to() string {
	if e.Passphrase {
		return "with a passphrase"
	}
	return "to " + strings.Join(e.Recipients, ", ")
}

func (e *Encryption) noKey() error {
	return fmt.Errorf("%w: it is encrypted %s, and no key was given (the server's --age-identity / DG_AGE_IDENTITY file)", ErrNoIdentity, e.to())
}

// NeedsKey returns an error matching ErrNoIdentity, naming the recipients,
// when m is encrypted and haveKeys is false: a reader can refuse before it
// does anything else.
func (m *Manifest) NeedsKey(haveKeys bool) error {
	if m.Encryption == nil || haveKeys {
		return nil
	}
	return m.Encryption.noKey()
}
