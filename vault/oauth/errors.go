package oauth

import (
	"errors"
	"fmt"
	"log/slog"
)

// Kind classifies an Error by what the caller should do about it.
type Kind int

const (
	// KindTemporary: retry later (network failure, HTTP 5xx or 429,
	// temporarily_unavailable, the store unreachable).
	KindTemporary Kind = iota + 1
	// KindReenroll: the grant is gone (invalid_grant, RFC 6749 section
	// 5.2, or no grant stored); the user must enrol again.
	KindReenroll
	// KindPermanent: retrying will not help until the configuration
	// changes (invalid_client, unauthorized_client, invalid_scope, a
	// denied or expired device authorization).
	KindPermanent
)

func (k Kind) String() string {
	switch k {
	case KindTemporary:
		return "temporary"
	case KindReenroll:
		return "reenroll"
	case KindPermanent:
		return "permanent"
	}
	return "unknown"
}

// Sentinels matched by errors.Is on an *Error of that kind.
var (
	ErrTemporary = errors.New("oauth: temporary failure")
	ErrReenroll  = errors.New("oauth: grant no longer valid, enrolment needed")
	ErrPermanent = errors.New("oauth: permanent failure")
)

// Error is a failed OAuth operation. Its message names the operation, the
// OAuth error code and the HTTP status, never the provider's free text
// nor any token, so it may be shown to users; Description is for logs.
type Error struct {
	Kind   Kind
	Op     string // "discovery", "device_authorization", "device_token", "refresh", "client_credentials", "store"
	Code   string // the provider's error code (RFC 6749 section 5.2), if it is a plain token
	Status int    // HTTP status, 0 if no response
	// Description is the provider's error_description: for logs only,
	// never for clients (it may be long, localised, or name internals).
	Description string
	Err         error // cause (transport or store failure), if any
}

func (e *Error) Error() string {
	s := "oauth: " + e.Op
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + " [" + e.Kind.String() + "]"
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrTemporary:
		return e.Kind == KindTemporary
	case ErrReenroll:
		return e.Kind == KindReenroll
	case ErrPermanent:
		return e.Kind == KindPermanent
	}
	return false
}

// LogValue includes the provider's description, bounded, for logs.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("op", e.Op), slog.String("kind", e.Kind.String())}
	if e.Code != "" {
		attrs = append(attrs, slog.String("code", e.Code))
	}
	if e.Status != 0 {
		attrs = append(attrs, slog.Int("status", e.Status))
	}
	if e.Description != "" {
		attrs = append(attrs, slog.String("description", bound(e.Description, 300)))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("err", e.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// IsTemporary reports whether err is an *Error worth retrying later.
func IsTemporary(err error) bool { return errors.Is(err, ErrTemporary) }

// IsReenroll reports whether err means the user must enrol again.
func IsReenroll(err error) bool { return errors.Is(err, ErrReenroll) }

// plainCode returns code if it is a plain error-code token (RFC 6749
// section 5.2 allows %x20-21 / %x23-5B / %x5D-7E; we keep the common
// lowercase-and-underscore form), else "error": the field is the
// provider's, so it is not trusted into messages.
func plainCode(code string) string {
	if code == "" || len(code) > 64 {
		return "error"
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "error"
		}
	}
	return code
}

func bound(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
