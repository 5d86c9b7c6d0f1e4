package vault

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// KeySize is the size of the vault key in bytes (AES-256).
const KeySize = 32

// Key is the vault key that seals tokens at rest.
type Key [KeySize]byte

// LoadKeyFile reads the vault key from path.
//
// The file holds the key as 64 hexadecimal digits; surrounding white space
// (a trailing newline) is ignored. One text format keeps the file easy to
// inspect, back up and recreate without guessing its encoding.
//
// The file must be a regular file that neither group nor others can access
// (mode 0600 or stricter): a readable key would expose every sealed token.
func LoadKeyFile(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vault: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vault: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("vault: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("vault: key file %s has mode %04o: group and others must have no access (chmod 600 %s)",
			path, perm, path)
	}
	// Read a little more than a valid file holds, to reject a wrong file
	// without reading all of it.
	buf, err := io.ReadAll(io.LimitReader(f, 2*KeySize+64))
	if err != nil {
		return nil, fmt.Errorf("vault: key file %s: %w", path, err)
	}
	text := strings.TrimSpace(string(buf))
	if len(text) != 2*KeySize {
		return nil, fmt.Errorf("vault: key file %s: want %d hexadecimal digits, got %d characters",
			path, 2*KeySize, len(text))
	}
	var k Key
	if _, err := hex.Decode(k[:], []byte(text)); err != nil {
		return nil, fmt.Errorf("vault: key file %s: %v", path, err)
	}
	return &k, nil
}

// GenerateKeyFile writes a new random key to path with mode 0600, in the
// format LoadKeyFile reads. It refuses to overwrite an existing file: losing
// the old key would make every stored grant unreadable.
func GenerateKeyFile(path string) error {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("vault: key file: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s\n", hex.EncodeToString(k[:]))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("vault: key file %s: %w", path, err)
	}
	return nil
}
