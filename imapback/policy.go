package imapback

import (
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/pop3front"
)

// checkPolicy settles the session's delete policy against the
// capabilities the server advertised after login.
//
//   - expunge needs UID EXPUNGE: UIDPLUS (RFC 4315) or IMAP4rev2 (RFC 9051).
//     A plain EXPUNGE would also remove other clients' \Deleted messages.
//   - trash and archive need UID MOVE (RFC 6851, part of IMAP4rev2), or
//     UID EXPUNGE for COPY + STORE \Deleted + UID EXPUNGE.
//
// When the server lacks it, the session is refused with -ERR [SYS/PERM],
// or, with Policy.FallbackToFlag, downgraded to flag with a warning.
func (m *maildrop) checkPolicy() error {
	uidExpunge := m.caps.Has(imap.CapUIDPlus) // Has knows IMAP4rev2 implies it
	move := m.caps.Has(imap.CapMove)
	var missing string
	switch m.policy.Delete {
	case DeleteExpunge:
		if !uidExpunge {
			missing = "UIDPLUS"
		}
	case DeleteTrash, DeleteArchive:
		if !move && !uidExpunge {
			missing = "MOVE and UIDPLUS"
		}
	}
	if missing == "" {
		return nil
	}
	text := fmt.Sprintf("Server lacks %s; delete policy %s unavailable", missing, m.policy.Delete)
	if m.policy.FallbackToFlag {
		m.log.Warn(text+"; using flag instead", "policy", m.policy.Delete)
		m.policy.Delete = DeleteFlag
		return nil
	}
	m.log.Error(text+"; refusing the session (set fallback to flag to allow it)", "policy", m.policy.Delete)
	return permErr(text, errors.New(text))
}

// Expire is the CAPA EXPIRE value (RFC 2449 section 6.7) policy p
// warrants. The gateway never removes mail the client did not delete,
// whatever the delete policy, so retrieved messages are kept: "NEVER".
// Under HideRetrieved a retrieved message leaves the POP3 listing at the
// QUIT that follows (it stays in the mailbox for IMAP clients): "0".
func (p Policy) Expire() string {
	if p.HideRetrieved {
		return "0"
	}
	return "NEVER"
}

// Expire implements pop3front.Expirer: the value for the session's
// effective policy, overrides and login options included.
func (m *maildrop) Expire() string { return m.policy.Expire() }

var _ pop3front.Expirer = (*maildrop)(nil)
