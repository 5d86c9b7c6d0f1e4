package imapback

import (
	"fmt"

	"github.com/popbridge/popbridge/internal/enum"
)

// The allowed values of Config's and Policy's named types, listed once.
// Each type implements encoding.TextUnmarshaler, so a configuration file
// decoder refuses a bad value at its key and line.

var (
	securities     = []Security{SecurityNone, SecurityStartTLS, SecurityTLS}
	deletePolicies = []DeletePolicy{DeleteFlag, DeleteKeyword, DeleteTrash, DeleteArchive, DeleteExpunge, DeleteKeep}
	seenPolicies   = []SeenPolicy{SeenQuit, SeenNever}
	uidlSchemes    = []UIDLScheme{UIDLDovecot, UIDLEmailID, UIDLGmail, UIDLContent}
	windows        = []Window{WindowNewest, WindowOldest}
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Security) UnmarshalText(b []byte) error { return enum.Parse(s, b, securities) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *DeletePolicy) UnmarshalText(b []byte) error { return enum.Parse(p, b, deletePolicies) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *SeenPolicy) UnmarshalText(b []byte) error { return enum.Parse(p, b, seenPolicies) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *UIDLScheme) UnmarshalText(b []byte) error { return enum.Parse(s, b, uidlSchemes) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (w *Window) UnmarshalText(b []byte) error { return enum.Parse(w, b, windows) }

// Check reports whether s is one of the allowed values.
func (s Security) Check() error { return enum.Check(s, securities) }

// Check reports whether p is one of the allowed values.
func (p DeletePolicy) Check() error { return enum.Check(p, deletePolicies) }

// Check reports whether p is one of the allowed values.
func (p SeenPolicy) Check() error { return enum.Check(p, seenPolicies) }

// Check reports whether s is one of the allowed values.
func (s UIDLScheme) Check() error { return enum.Check(s, uidlSchemes) }

// Check reports whether w is one of the allowed values.
func (w Window) Check() error { return enum.Check(w, windows) }

// CheckKeyword reports whether kw is a flag-keyword (RFC 3501 section 9:
// an atom, 1..100 octets; no atom-specials, no "\").
func CheckKeyword(kw string) error {
	if kw == "" || len(kw) > maxKeyword {
		return fmt.Errorf("length must be 1..%d", maxKeyword)
	}
	if !validKeyword(kw) {
		return fmt.Errorf("%q is not a valid IMAP keyword", kw)
	}
	return nil
}

// maxKeyword bounds a keyword we store: servers limit their length.
const maxKeyword = 100
