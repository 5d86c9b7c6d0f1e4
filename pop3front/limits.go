package pop3front

import "time"

// Limits bounds what one session may consume (docs/design.md, invariant 9). A zero field
// takes its default.
type Limits struct {
	// MaxLineLength is the longest command or SASL line accepted, CRLF
	// not counted. A longer line is answered "-ERR Line too long" and the
	// connection closed. Default 1024; values below 255 are raised to 255
	// (RFC 2449 section 4 and RFC 5034 section 4 need 255).
	MaxLineLength int
	// MaxBadCommands is the number of bad commands (unknown, wrong state,
	// syntax errors, refused cleartext logins) that ends a session before
	// login; failed logins are counted by MaxAuthAttempts. Default 3.
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
	// TLSHandshakeTimeout bounds each TLS handshake, implicit (ServeTLS)
	// or after STLS; it never extends AuthTimeout. Default 10s.
	TLSHandshakeTimeout time.Duration
	// MaxAuthAttempts is the number of failed logins (USER/PASS or AUTH)
	// one connection may make; the last one's reply is followed by a
	// close. Default 3.
	MaxAuthAttempts int
	// AuthPenaltyInitial is the delay imposed on every login attempt from
	// a client address (IPv6: its /64) after one failed login; each
	// further failure with new credentials doubles it, up to
	// AuthPenaltyMax (penalty.go). Defaults 2s and 15s. A negative
	// AuthPenaltyInitial disables the penalty.
	AuthPenaltyInitial time.Duration
	AuthPenaltyMax     time.Duration
	// MaxConnections caps concurrent connections in total, across every
	// listener of the Server; MaxConnectionsPerIP per client address
	// (IPv6: per /64). Over either, a client gets
	// "-ERR [SYS/TEMP] ..." and is closed. Defaults 1000 and 20.
	MaxConnections      int
	MaxConnectionsPerIP int
	// MaxSessionsPerUser caps concurrent logged-in sessions of one user
	// (counted after a successful login, by lower-cased name, so failed
	// logins cannot lock a user out). Over it the login is answered
	// "-ERR [IN-USE] ..." and the connection closed. Default 10.
	MaxSessionsPerUser int
}

// Defaults, from prior art (docs/design.md, "Limits").
const (
	DefaultMaxLineLength        = 1024
	DefaultMaxBadCommands       = 3
	DefaultMaxBadCommandsAuthed = 20
	DefaultAuthTimeout          = 60 * time.Second
	DefaultIdleTimeout          = 10 * time.Minute
	DefaultWriteTimeout         = 60 * time.Second
	DefaultLoginTimeout         = 30 * time.Second
	DefaultCommitTimeout        = 2 * time.Minute
	DefaultTLSHandshakeTimeout  = 10 * time.Second
	DefaultMaxAuthAttempts      = 3
	DefaultAuthPenaltyInitial   = 2 * time.Second
	DefaultAuthPenaltyMax       = 15 * time.Second
	DefaultMaxConnections       = 1000
	DefaultMaxConnectionsPerIP  = 20
	DefaultMaxSessionsPerUser   = 10

	// minLineLength is what RFC 2449 section 4 requires servers to accept.
	minLineLength = 255
)

// DefaultLimits returns every limit at its default.
func DefaultLimits() Limits {
	return Limits{
		MaxLineLength:        DefaultMaxLineLength,
		MaxBadCommands:       DefaultMaxBadCommands,
		MaxBadCommandsAuthed: DefaultMaxBadCommandsAuthed,
		AuthTimeout:          DefaultAuthTimeout,
		IdleTimeout:          DefaultIdleTimeout,
		WriteTimeout:         DefaultWriteTimeout,
		LoginTimeout:         DefaultLoginTimeout,
		CommitTimeout:        DefaultCommitTimeout,
		TLSHandshakeTimeout:  DefaultTLSHandshakeTimeout,
		MaxAuthAttempts:      DefaultMaxAuthAttempts,
		AuthPenaltyInitial:   DefaultAuthPenaltyInitial,
		AuthPenaltyMax:       DefaultAuthPenaltyMax,
		MaxConnections:       DefaultMaxConnections,
		MaxConnectionsPerIP:  DefaultMaxConnectionsPerIP,
		MaxSessionsPerUser:   DefaultMaxSessionsPerUser,
	}
}

// withDefaults returns l with every zero or negative field set to its
// default (a negative AuthPenaltyInitial stays: it disables the penalty).
func (l Limits) withDefaults() Limits {
	def := DefaultLimits()
	setInt := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setInt(&l.MaxLineLength, def.MaxLineLength)
	l.MaxLineLength = max(l.MaxLineLength, minLineLength)
	setInt(&l.MaxBadCommands, def.MaxBadCommands)
	setInt(&l.MaxBadCommandsAuthed, def.MaxBadCommandsAuthed)
	setInt(&l.MaxAuthAttempts, def.MaxAuthAttempts)
	setInt(&l.MaxConnections, def.MaxConnections)
	setInt(&l.MaxConnectionsPerIP, def.MaxConnectionsPerIP)
	setInt(&l.MaxSessionsPerUser, def.MaxSessionsPerUser)
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&l.AuthTimeout, def.AuthTimeout)
	setDur(&l.IdleTimeout, def.IdleTimeout)
	setDur(&l.WriteTimeout, def.WriteTimeout)
	setDur(&l.LoginTimeout, def.LoginTimeout)
	setDur(&l.CommitTimeout, def.CommitTimeout)
	setDur(&l.TLSHandshakeTimeout, def.TLSHandshakeTimeout)
	if l.AuthPenaltyInitial == 0 {
		l.AuthPenaltyInitial = def.AuthPenaltyInitial
	}
	setDur(&l.AuthPenaltyMax, def.AuthPenaltyMax)
	l.AuthPenaltyMax = max(l.AuthPenaltyMax, l.AuthPenaltyInitial)
	return l
}
