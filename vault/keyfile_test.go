package vault

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateAndLoadKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.key")
	if err := GenerateKeyFile(path); err != nil {
		t.Fatalf("GenerateKeyFile: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode of generated key file: got %04o, want 0600", got)
	}
	text, _ := os.ReadFile(path)
	if len(text) != 65 || text[64] != '\n' {
		t.Errorf("key file: got %q, want 64 hex digits and a newline", text)
	}
	k1, err := LoadKeyFile(path)
	if err != nil {
		t.Fatalf("LoadKeyFile: %v", err)
	}
	if *k1 == (Key{}) {
		t.Fatal("loaded key is all zeros")
	}
	if err := GenerateKeyFile(path); err == nil {
		t.Fatal("GenerateKeyFile overwrote an existing key file")
	}
	k2, err := LoadKeyFile(path)
	if err != nil || *k2 != *k1 {
		t.Fatalf("key after refused overwrite: changed or unreadable (%v)", err)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	if err := GenerateKeyFile(other); err != nil {
		t.Fatal(err)
	}
	if k3, _ := LoadKeyFile(other); bytes.Equal(k3[:], k1[:]) {
		t.Fatal("two generated keys are equal")
	}
}

func TestKeyFilePermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.key")
	if err := GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeyFile(path)
		if err == nil {
			t.Errorf("mode %04o: loaded, want a permission error", mode)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, path) || !strings.Contains(msg, "0"+octal(mode)) {
			t.Errorf("mode %04o: error %q does not name the file and mode", mode, msg)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		os.Chmod(path, mode)
		if _, err := LoadKeyFile(path); err != nil {
			t.Errorf("mode %04o: %v, want loaded", mode, err)
		}
	}
	if _, err := LoadKeyFile(dir); err == nil {
		t.Error("loaded a directory as key file")
	}
}

func octal(m os.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

func TestKeyFileMalformed(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"short":    strings.Repeat("ab", 31),
		"long":     strings.Repeat("ab", 33),
		"not hex":  strings.Repeat("zz", 32),
		"raw":      strings.Repeat("\x01", 32),
		"empty":    "",
		"base64":   "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=",
		"two keys": strings.Repeat("ab", 32) + "\n" + strings.Repeat("cd", 32),
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKeyFile(path); err == nil {
			t.Errorf("%s: loaded, want an error", name)
		}
	}
	// Surrounding white space is fine.
	path := filepath.Join(dir, "spaced")
	os.WriteFile(path, []byte("  "+strings.Repeat("0f", 32)+"\r\n"), 0o600)
	k, err := LoadKeyFile(path)
	if err != nil {
		t.Fatalf("key with white space: %v", err)
	}
	if k[0] != 0x0f || k[31] != 0x0f {
		t.Errorf("key bytes: got %x, want 0f repeated", k[:])
	}
}
