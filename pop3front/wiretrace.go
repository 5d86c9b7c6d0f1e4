package pop3front

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
)

// WireTrace logs the protocol lines of chosen sessions, for debugging a
// device that misbehaves. Credentials never appear: PASS arguments, AUTH
// initial responses and every SASL response are replaced by
// "<redacted>"; message contents and listings are summarised, not
// traced.
type WireTrace struct {
	// User selects the sessions: "*" traces every session from its
	// greeting; a name traces the sessions of that user (compared
	// case-insensitively) from the moment the client names it.
	User   string
	Logger *slog.Logger // lines go here at Info level
}

// Matches reports whether user's sessions are traced.
func (w *WireTrace) Matches(user string) bool {
	return w != nil && (w.User == "*" || strings.EqualFold(w.User, user))
}

// traceUser switches tracing on once the client named a traced user.
func (s *session) traceUser(user string) {
	if !s.tracing && s.srv.Trace.Matches(user) {
		s.tracing = true
		s.trace("trace", "tracing user "+user)
		s.trace("C", s.curCmd) // the command that named it
	}
}

// trace logs one line; dir is "C" (from the client), "S" (to the client)
// or a note.
func (s *session) trace(dir, line string) {
	s.srv.Trace.Logger.LogAttrs(context.Background(), slog.LevelInfo, "pop3 wire",
		slog.String("client", s.clientAddr()), slog.String("dir", dir), slog.String("line", line))
}

// traceClient logs a command line with its credentials redacted.
func (s *session) traceClient(line []byte) {
	// Redacted now: line points into the read buffer, which later SASL
	// lines overwrite.
	s.curCmd = redactCommand(line)
	if s.tracing {
		s.trace("C", s.curCmd)
	}
}

// traceServer logs a reply line (without its CRLF).
func (s *session) traceServer(line []byte) {
	if s.tracing {
		s.trace("S", string(bytes.TrimSuffix(line, crlf)))
	}
}

// redactCommand keeps the command and what is safe of its arguments.
func redactCommand(line []byte) string {
	name, rest, _ := bytes.Cut(line, []byte{' '})
	switch strings.ToUpper(string(name)) {
	case "PASS":
		return string(name) + " <redacted>"
	case "AUTH":
		mech, ir, hasIR := bytes.Cut(rest, []byte{' '})
		if hasIR && len(ir) > 0 {
			return string(name) + " " + string(mech) + " <redacted>"
		}
	}
	return string(line)
}
