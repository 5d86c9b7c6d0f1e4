package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// sealVersion is the first byte of every sealed value, so the format can
// change later without guessing.
const sealVersion = 1

// ErrUnseal reports a sealed value that does not open: a wrong key, a value
// moved to another user or field, or a tampered value.
var ErrUnseal = errors.New("vault: sealed value does not open (wrong key, wrong user, or tampered)")

// Sealer encrypts secrets at rest with AES-256-GCM.
//
// A sealed value is: version byte, 12-byte random nonce, ciphertext and
// 16-byte tag. The associated data binds it to its user and field, so a
// value copied to another user's row (or from the access to the refresh
// column) fails to open instead of being used for the wrong mailbox.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for key.
func NewSealer(key *Key) (*Sealer, error) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// associated builds the associated data. The NUL cannot occur in a user name
// that came through POP3 or IMAP, so user and field cannot be confused.
func associated(user, field string) []byte {
	return []byte("popbridge-vault\x00" + field + "\x00" + user)
}

// Seal encrypts plaintext for user's field with a fresh random nonce.
func (s *Sealer) Seal(user, field string, plaintext []byte) []byte {
	n := s.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	// A random 96-bit nonce is safe for far more messages than a vault
	// seals in its life (NIST SP 800-38D limits it to 2^32 per key).
	if _, err := rand.Read(out[1:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return s.aead.Seal(out, out[1:], plaintext, associated(user, field))
}

// Open decrypts a value sealed for user's field.
func (s *Sealer) Open(user, field string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrUnseal
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], associated(user, field))
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}
