package vault

import (
	"bytes"
	"errors"
	"testing"
)

func testSealer(t *testing.T, fill byte) *Sealer {
	t.Helper()
	var k Key
	for i := range k {
		k[i] = fill + byte(i)
	}
	s, err := NewSealer(&k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	s := testSealer(t, 1)
	secret := []byte("1.AXoA-refresh-token")
	a := s.Seal("alice@example.com", "refresh", secret)
	b := s.Seal("alice@example.com", "refresh", secret)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one secret are equal: nonce not random")
	}
	if bytes.Contains(a, secret) {
		t.Fatal("sealed value contains the plaintext")
	}
	for _, sealed := range [][]byte{a, b} {
		got, err := s.Open("alice@example.com", "refresh", sealed)
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Open: got %q, %v, want %q", got, err, secret)
		}
	}
}

func TestSealBoundToUserFieldAndKey(t *testing.T) {
	s := testSealer(t, 1)
	sealed := s.Seal("alice@example.com", "refresh", []byte("token"))
	for _, c := range []struct{ name, user, field string }{
		{"other user", "bob@example.com", "refresh"},
		{"user prefix", "alice@example.co", "refresh"},
		{"other field", "alice@example.com", "access"},
	} {
		if _, err := s.Open(c.user, c.field, sealed); !errors.Is(err, ErrUnseal) {
			t.Errorf("%s: got %v, want ErrUnseal", c.name, err)
		}
	}
	if _, err := testSealer(t, 2).Open("alice@example.com", "refresh", sealed); !errors.Is(err, ErrUnseal) {
		t.Errorf("other key: got %v, want ErrUnseal", err)
	}
}

func TestSealTampered(t *testing.T) {
	s := testSealer(t, 1)
	sealed := s.Seal("alice", "refresh", []byte("token"))
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if got, err := s.Open("alice", "refresh", bad); !errors.Is(err, ErrUnseal) {
			t.Errorf("byte %d flipped: got %q, %v, want ErrUnseal", i, got, err)
		}
	}
	for _, n := range []int{0, 1, 13, len(sealed) - 1} {
		if _, err := s.Open("alice", "refresh", sealed[:n]); !errors.Is(err, ErrUnseal) {
			t.Errorf("truncated to %d bytes: got %v, want ErrUnseal", n, err)
		}
	}
	if _, err := s.Open("alice", "refresh", append(bytes.Clone(sealed), 0)); !errors.Is(err, ErrUnseal) {
		t.Errorf("byte appended: got %v, want ErrUnseal", err)
	}
}
