package pop3front

import (
	"bytes"
	"context"
	"fmt"
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

// traceUser switches tracing on once the client named a traced user,
// and logs the command that named it with its SASL steps so far.
func (s *session) traceUser(user string) {
	if !s.tracing && s.srv.Trace.Matches(user) {
		s.tracing = true
		s.trace("trace", "tracing user "+user)
		s.trace("C", s.curCmd) // the command that named it
		for _, l := range s.curSteps {
			s.trace(l.dir, l.line)
		}
	}
	s.curSteps = s.curSteps[:0]
}

// traceLine is one line kept for traceUser.
type traceLine struct{ dir, line string }

// traceStep logs a line of the command being handled (a SASL challenge
// or a redacted response), or keeps it until the user is known.
func (s *session) traceStep(dir, line string) {
	if s.tracing {
		s.trace(dir, line)
	} else if s.srv.Trace != nil && len(s.curSteps) < 8 {
		s.curSteps = append(s.curSteps, traceLine{dir, line})
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
	s.curSteps = s.curSteps[:0]
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

// redacted stands for whatever a traced line left out.
const redacted = "<redacted>"

// redactCommand keeps the command name and what is safe of its
// arguments. The name is the leading letters, whatever follows them
// (space, tab, anything): after PASS and APOP nothing is kept, after
// AUTH only a mechanism name. A line that does not start with a known
// command, such as a SASL response read as a command, is not kept at
// all: it may be a password or its base64.
func redactCommand(line []byte) string {
	n := 0
	for n < len(line) && isLetter(line[n]) {
		n++
	}
	name := string(line[:n])
	if len(name) > 4 && hasPrefixFold(name, "PASS", "APOP", "AUTH") {
		return name[:4] + " " + redacted // no separator at all
	}
	up := strings.ToUpper(name)
	if commands[up] == nil && up != "APOP" {
		return fmt.Sprintf("%s (unknown command, %d octets)", redacted, len(line))
	}
	rest := line[n:]
	switch up {
	case "PASS", "APOP":
		if len(rest) > 0 {
			return name + " " + redacted
		}
	case "AUTH":
		sep := 0
		for sep < len(rest) && isSpace(rest[sep]) {
			sep++
		}
		m := sep
		for m < len(rest) && isMechChar(rest[m]) {
			m++
		}
		mech, after := rest[sep:m], rest[m:]
		switch {
		case len(rest) > 0 && (sep == 0 || len(mech) == 0):
			return name + " " + redacted // not AUTH SP mechanism
		case len(bytes.TrimRight(after, " \t")) > 0:
			return name + " " + string(mech) + " " + redacted
		}
		return strings.TrimSpace(name + " " + string(mech))
	}
	return string(line)
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// isMechChar: a SASL mechanism name is upper-case letters, digits, '-'
// and '_' (RFC 4422 section 3.1); lower case is accepted as clients send it.
func isMechChar(c byte) bool {
	return isLetter(c) || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func hasPrefixFold(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			return true
		}
	}
	return false
}
