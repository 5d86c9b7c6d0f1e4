package imapback

import "github.com/emersion/go-imap/v2"

// goneNo reports whether a tagged NO to a UID FETCH of one message means
// the message is gone: a NO without a response code (RFC 2180 section
// 4.1.2 lets servers answer a fetch of an expunged message so),
// EXPUNGEISSUED or NONEXISTENT. Any other code (SERVERBUG, UNAVAILABLE,
// LIMIT, INUSE, ...) is server trouble: the message may well exist, so
// the fetch failed; calling it expunged would make a pipelined DELE look
// harmless.
func goneNo(ie *imap.Error) bool {
	if ie == nil || ie.Type != imap.StatusResponseTypeNo {
		return false
	}
	switch ie.Code {
	case "", "EXPUNGEISSUED", imap.ResponseCodeNonExistent: // RFC 5530
		return true
	}
	return false
}

// markGone records that message index was found gone (RETR or TOP
// answered "expunged"). Callers hold m.mu.
func (m *maildrop) markGone(index int) {
	if m.gone == nil {
		m.gone = make(map[int]bool)
	}
	if !m.gone[index] {
		m.b.anomaly(AnomalyExpunged) // once per message and session
	}
	m.gone[index] = true
}

// withoutGone drops the messages found gone from a DELE set: DELE of an
// expunged message is a no-op at QUIT (docs/design.md). Nothing is lost if
// the message was in fact gone; if the upstream only said so (a plain NO
// can also be a transient refusal), a pipelined "RETR n, DELE n, QUIT"
// does not delete a message the client never received. Callers hold m.mu.
func (m *maildrop) withoutGone(indexes []int) []int {
	if len(m.gone) == 0 {
		return indexes
	}
	out := make([]int, 0, len(indexes))
	for _, i := range indexes {
		if !m.gone[i] {
			out = append(out, i)
		}
	}
	return out
}
