package imapback

import (
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/pop3front"
)

// goneKind is how sure the gateway is that a message it snapshotted is
// gone upstream.
type goneKind uint8

const (
	notGone goneKind = iota
	// maybeGone: the fetch got a NO without a response code, or completed
	// without the message's data. RFC 2180 section 4.1 lets a server
	// answer an expunged message so, but a server in trouble may answer
	// the same way: it proves nothing. The client is told "expunged"; a
	// later RETR asks the server again, and its success clears the mark.
	maybeGone
	// confirmedGone: the server said so (NO [EXPUNGEISSUED] or
	// [NONEXISTENT], RFC 5530; a NIL body section) or offered other
	// bytes than the snapshotted message under its UID. Later RETR and
	// TOP answer "expunged" without asking: a server that serves another
	// message under an expunged UID could serve one of the same size.
	confirmedGone
)

// errMaybeGone is a fetch answer that does not prove the message gone
// (maybeGone); it is an ErrExpunged, so the client is told "expunged".
var errMaybeGone = fmt.Errorf("%w (not confirmed)", pop3front.ErrExpunged)

// goneNo reports what a tagged NO to a UID FETCH of one message says
// about it: EXPUNGEISSUED or NONEXISTENT confirm it gone; a NO without a
// response code (RFC 2180 section 4.1.2) may mean it is gone. Any other
// code (SERVERBUG, UNAVAILABLE, LIMIT, INUSE, ...) is server trouble:
// the message may well exist, so the fetch failed; calling it expunged
// would make a pipelined DELE look harmless.
func goneNo(ie *imap.Error) goneKind {
	if ie == nil || ie.Type != imap.StatusResponseTypeNo {
		return notGone
	}
	switch ie.Code {
	case "EXPUNGEISSUED", imap.ResponseCodeNonExistent: // RFC 5530
		return confirmedGone
	case "":
		return maybeGone
	}
	return notGone
}

// goneErr is the error for a fetch answer of kind k (not notGone).
func goneErr(k goneKind) error {
	if k == maybeGone {
		return errMaybeGone
	}
	return pop3front.ErrExpunged
}

// markGone records that a RETR or TOP of message index was answered
// "expunged" because of err (an ErrExpunged, possibly errMaybeGone).
// A mark never weakens. Callers hold m.mu.
func (m *maildrop) markGone(index int, err error) {
	k := confirmedGone
	if err == errMaybeGone {
		k = maybeGone
	}
	if m.gone == nil {
		m.gone = make(map[int]goneKind)
	}
	old := m.gone[index]
	if old == notGone {
		m.b.anomaly(AnomalyExpunged) // once per message and session
	}
	m.gone[index] = max(old, k)
}

// retrieved clears a maybeGone mark once a RETR of message index began
// with the snapshotted message's bytes: the earlier answer was the
// server's trouble, not an expunge, and a DELE of it applies at QUIT.
// (If the transfer then fails the session ends without QUIT.) Callers
// hold m.mu.
func (m *maildrop) retrieved(index int) {
	if m.gone[index] == maybeGone {
		delete(m.gone, index)
	}
}

// withoutGone drops the messages answered "expunged" from a DELE set:
// DELE of an expunged message is a no-op at QUIT (docs/design.md).
// Nothing is lost if the message was in fact gone; if the upstream only
// said so (maybeGone) and no RETR of it succeeded since, a pipelined
// "RETR n, DELE n, QUIT" does not delete a message the client never
// received. Callers hold m.mu.
func (m *maildrop) withoutGone(indexes []int) []int {
	if len(m.gone) == 0 {
		return indexes
	}
	out := make([]int, 0, len(indexes))
	for _, i := range indexes {
		if m.gone[i] == notGone {
			out = append(out, i)
		}
	}
	return out
}
