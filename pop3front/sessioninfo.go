package pop3front

import "log/slog"

// SessionInfo is an optional interface of a Maildrop: what it returns is
// added to the session's "pop3 session ended" log line (e.g. the UIDL
// scheme, the policy and the view the backend chose for this login).
// LogAttrs is called once, when the session ends, before the maildrop is
// closed (after Commit when QUIT was reached).
type SessionInfo interface {
	LogAttrs() []slog.Attr
}

// maildropAttrs returns md's SessionInfo attributes, or nil.
func maildropAttrs(md Maildrop) []slog.Attr {
	if si, ok := md.(SessionInfo); ok && md != nil {
		return si.LogAttrs()
	}
	return nil
}
