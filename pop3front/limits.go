package pop3front

import "time"

// Limits bounds what one session may consume (invariant 9). A zero field
// takes its default.
type Limits struct {
	// MaxLineLength is the longest command or SASL line accepted, CRLF
	// not counted. A longer line is answered "-ERR Line too long" and the
	// connection closed. Default 1024; values below 255 are raised to 255
	// (RFC 2449 section 4 and RFC 5034 section 4 need 255).
	MaxLineLength int
	// MaxBadCommands is the number of bad commands (unknown, wrong state,
	// syntax errors, failed logins) that ends a session before login.
	// Default 3.
	MaxBadCommands int
	// MaxBadCommandsAuthed is the same limit after login. Default 20.
	MaxBadCommandsAuthed int
	// AuthTimeout is an absolute deadline for the whole AUTHORIZATION
	// state, measured from accept: trickling bytes does not extend it.
	// Default 60s.
	AuthTimeout time.Duration
	// IdleTimeout is how long the server waits for each command after
	// login. RFC 1939 section 3 asks for at least 10 minutes. Default 10m.
	IdleTimeout time.Duration
	// WriteTimeout is the deadline of each write to the client (one
	// buffer flush, at most 32 KiB), not of a whole message. Default 60s.
	WriteTimeout time.Duration
	// LoginTimeout is the context deadline given to Backend.Login and to
	// Maildrop.Noop. Default 30s.
	LoginTimeout time.Duration
	// CommitTimeout is the context deadline given to Maildrop.Commit.
	// Default 2m.
	CommitTimeout time.Duration
}

// Defaults, from prior art (semantics.md "Limits").
const (
	DefaultMaxLineLength        = 1024
	DefaultMaxBadCommands       = 3
	DefaultMaxBadCommandsAuthed = 20
	DefaultAuthTimeout          = 60 * time.Second
	DefaultIdleTimeout          = 10 * time.Minute
	DefaultWriteTimeout         = 60 * time.Second
	DefaultLoginTimeout         = 30 * time.Second
	DefaultCommitTimeout        = 2 * time.Minute

	// minLineLength is what RFC 2449 section 4 requires servers to accept.
	minLineLength = 255
)

// withDefaults returns l with every zero or negative field set to its
// default.
func (l Limits) withDefaults() Limits {
	if l.MaxLineLength <= 0 {
		l.MaxLineLength = DefaultMaxLineLength
	}
	if l.MaxLineLength < minLineLength {
		l.MaxLineLength = minLineLength
	}
	if l.MaxBadCommands <= 0 {
		l.MaxBadCommands = DefaultMaxBadCommands
	}
	if l.MaxBadCommandsAuthed <= 0 {
		l.MaxBadCommandsAuthed = DefaultMaxBadCommandsAuthed
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&l.AuthTimeout, DefaultAuthTimeout)
	setDur(&l.IdleTimeout, DefaultIdleTimeout)
	setDur(&l.WriteTimeout, DefaultWriteTimeout)
	setDur(&l.LoginTimeout, DefaultLoginTimeout)
	setDur(&l.CommitTimeout, DefaultCommitTimeout)
	return l
}
