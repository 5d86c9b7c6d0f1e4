package imapback

import (
	"io"
	"log/slog"
	"testing"
)

func TestValuesUnmarshalText(t *testing.T) {
	var d DeletePolicy
	if err := d.UnmarshalText([]byte("trash")); err != nil || d != DeleteTrash {
		t.Errorf("UnmarshalText(trash) = %v, %q; want nil, trash", err, d)
	}
	err := d.UnmarshalText([]byte("shred"))
	if want := `"shred" is not one of flag | keyword | trash | archive | expunge | keep`; err == nil || err.Error() != want {
		t.Errorf("UnmarshalText(shred) = %v, want %s", err, want)
	}
	if d != DeleteTrash {
		t.Errorf("a refused value changed the policy to %q", d)
	}
	for _, tc := range []struct {
		v interface{ UnmarshalText([]byte) error }
		s string
	}{
		{new(Security), "starttls"}, {new(SeenPolicy), "never"}, {new(UIDLScheme), "x-gm-msgid"}, {new(Window), "oldest"},
	} {
		if err := tc.v.UnmarshalText([]byte(tc.s)); err != nil {
			t.Errorf("%T.UnmarshalText(%q) = %v, want nil", tc.v, tc.s, err)
		}
		if err := tc.v.UnmarshalText([]byte("bogus")); err == nil {
			t.Errorf("%T.UnmarshalText(bogus) = nil, want an error", tc.v)
		}
	}
}

// TestNewFillsDefaultPolicy: New's defaults are DefaultPolicy's (the
// booleans are taken as given).
func TestNewFillsDefaultPolicy(t *testing.T) {
	b, err := New(Config{Address: "127.0.0.1:1", Security: SecurityNone, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultPolicy()
	want.UIDLRequired = false
	if got := b.cfg.Policy; got != want {
		t.Errorf("policy = %+v, want %+v", got, want)
	}
	if b.cfg.Mailbox != DefaultMailbox || b.cfg.DialTimeout != DefaultDialTimeout || b.cfg.CommandTimeout != DefaultCommandTimeout {
		t.Errorf("config = %+v, want the Default* values", b.cfg)
	}
	if err := CheckKeyword(`\Deleted`); err == nil {
		t.Error(`CheckKeyword(\Deleted) = nil, want an error`)
	}
}
