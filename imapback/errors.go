package imapback

import (
	"errors"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/pop3front"
)

// Client-visible texts. Upstream text never reaches the client (it may be
// in any language, hold internals, or break POP3 framing); causes go to
// the log through pop3front.Error.Err.
const (
	unavailableText = "Mail server unavailable, try again later"
	lostText        = "Connection to the mail server lost"
	commitText      = "Could not apply changes, try again later"
	mailboxText     = "Mailbox unavailable, try again later"
)

func tempErr(text string, cause error) error {
	return &pop3front.Error{Code: pop3front.CodeSysTemp, Text: text, Err: cause}
}

func permErr(text string, cause error) error {
	return &pop3front.Error{Code: pop3front.CodeSysPerm, Text: text, Err: cause}
}

// imapError returns the server's NO or BAD as an *imap.Error, or nil when
// err is something else (connection lost, timeout, protocol error).
func imapError(err error) *imap.Error {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie
	}
	return nil
}

// isTryCreate reports a NO [TRYCREATE] (RFC 3501 section 6.4.7).
func isTryCreate(err error) bool {
	ie := imapError(err)
	return ie != nil && ie.Code == imap.ResponseCodeTryCreate
}

// classifyLogin maps a failed LOGIN or AUTHENTICATE. A tagged NO is bad
// credentials unless its response code (RFC 5530) says the server, not
// the user, is at fault; a BAD (the server could not parse credentials it
// dislikes) is also an authentication failure, so the user is not told to
// retry forever. Anything that is not a tagged response is a transport
// failure.
func classifyLogin(err error) error {
	ie := imapError(err)
	if ie == nil {
		return tempErr(unavailableText, err)
	}
	switch ie.Code {
	case imap.ResponseCodeUnavailable, imap.ResponseCodeServerBug,
		imap.ResponseCodeLimit, imap.ResponseCodeInUse:
		return tempErr(unavailableText, err)
	}
	return pop3front.ErrAuthFailed
}
