package pop3front

import (
	"context"
	"errors"
	"io"
	"net"
)

// Backend authenticates POP3 users and opens their maildrops. It is the only
// thing pop3front needs from a mail store; it knows nothing of how the store
// is reached. Implementations must be safe for concurrent use by many
// sessions.
type Backend interface {
	// Login authenticates req and returns the user's maildrop, frozen as it
	// was at login (RFC 1939 section 8: message numbers are fixed for the
	// session). Bad credentials must be reported as ErrAuthFailed (or an
	// *Error with code "AUTH"); an unreachable store as an *Error with code
	// "SYS/TEMP". Any other error is answered with a generic
	// "-ERR [SYS/TEMP]" and logged.
	Login(ctx context.Context, req *LoginRequest) (Maildrop, error)
}

// LoginRequest carries what the client presented. The password is a
// secret: implementations must never log it.
type LoginRequest struct {
	Username  string // authentication identity (USER, or SASL authcid)
	Password  string
	AuthzID   string // SASL authorization identity; "" when none was given
	Mechanism string // "USER", "PLAIN" or "LOGIN"
	// Client is the client's address: the peer's, the one a PROXY header
	// carried, or an UnknownClient when a relay did not name it.
	Client net.Addr
	// Local is the address the client connected to: the gateway's own,
	// or the destination a PROXY header carried (nil when unknown).
	Local net.Addr
	TLS   bool // the client connection is protected by TLS
}

// MessageInfo describes one message of the maildrop.
type MessageInfo struct {
	Size int64  // octets RETR will deliver (RFC 1939 "exact size")
	UIDL string // unique-id listing: 1-70 octets in 0x21-0x7E (RFC 1939 section 7)
}

// Section selects what Maildrop.Open streams.
type Section struct {
	// Top is false for RETR (the whole message). For TOP it is true and
	// BodyLines is the number of body lines the client asked for.
	Top       bool
	BodyLines int
}

// Maildrop is one user's mailbox as seen by one POP3 session.
//
// Messages is called once after Login; index i of its result is message
// number i+1 for the rest of the session. Nothing the maildrop does may
// change the upstream before Commit: Close without Commit leaves the store
// exactly as it was (RFC 1939 section 6; docs/design.md, invariant 1).
type Maildrop interface {
	// Messages returns the snapshot taken at login. It must not change.
	Messages() []MessageInfo

	// Open streams message index (0-based). It must return ErrExpunged
	// (before any byte is produced) when the message no longer exists or
	// the store would deliver something other than the snapshotted
	// message. For Section.Top the stream holds the header, the blank line
	// after it, and a prefix of the body holding at least BodyLines lines
	// when the body has that many (it may hold more: the caller cuts).
	// The stream is in the store's line-ending convention (CRLF expected,
	// bare LF tolerated); the caller normalises and dot-stuffs.
	//
	// Read must return io.EOF only after the complete message arrived;
	// a truncated or otherwise damaged transfer must surface as a non-EOF
	// error so the caller never sends the terminator (docs/design.md, invariant 4).
	// Close must release every upstream resource even if the stream was
	// not read to the end. At most one stream is open at a time.
	Open(ctx context.Context, index int, sec Section) (io.ReadCloser, error)

	// Noop keeps a long session's upstream connection alive.
	Noop(ctx context.Context) error

	// Commit applies the session's outcome at QUIT (the UPDATE state).
	// It returns nil only after the store confirmed every change
	// (docs/design.md, invariant 3). Deleted and Retrieved hold 0-based
	// indexes and cover only what happened after the last RSET. On error
	// nothing outside Deleted/Retrieved may have changed.
	Commit(ctx context.Context, outcome Outcome) error

	// Close ends the session with the store. It never changes the store.
	Close() error
}

// Outcome is what a POP3 session asks the store to apply at QUIT.
type Outcome struct {
	Deleted   []int // message indexes marked by DELE since the last RSET
	Retrieved []int // message indexes fully sent by RETR since the last RSET
}

// Response codes (RFC 2449 section 8, RFC 3206).
const (
	CodeAuth    = "AUTH"
	CodeSysTemp = "SYS/TEMP"
	CodeSysPerm = "SYS/PERM"
	CodeInUse   = "IN-USE"
)

// Error is a failure meant for the client: it is answered as
// "-ERR [Code] Text". Text must be safe to show: never upstream error text,
// never a secret.
type Error struct {
	Code string // response code without brackets; "" for none
	Text string
	Err  error // the underlying cause, for logs only
}

func (e *Error) Error() string {
	msg := e.Text
	if e.Code != "" {
		msg = "[" + e.Code + "] " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

var (
	// ErrAuthFailed reports bad credentials. Unknown user and wrong
	// password must look alike (docs/design.md, invariant 7).
	ErrAuthFailed = errors.New("pop3: authentication failed")
	// ErrExpunged reports that a message disappeared from the store (or
	// the store would deliver a different message under its UID).
	ErrExpunged = errors.New("pop3: message expunged")
)
