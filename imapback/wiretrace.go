package imapback

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
)

// traceConn logs the IMAP lines of one upstream connection for
// -debug-wire: what the gateway sends ("C") and what the server answers
// ("S"). Credentials never appear: LOGIN's arguments (quoted or as
// literals) and AUTHENTICATE's initial response and SASL responses are
// replaced by "<redacted>", whatever the separator or letter case. Literal contents (message bodies, and
// LOGIN's literals) are summarised by their size, never logged.
type traceConn struct {
	net.Conn
	log *slog.Logger

	mu             sync.Mutex // the two directions share the SASL state
	authenticating bool       // client lines are SASL responses
	up, down       lineSplitter
}

func newTraceConn(c net.Conn, log *slog.Logger) *traceConn {
	t := &traceConn{Conn: c, log: log}
	t.up.emit = t.clientLine
	t.down.emit = t.serverLine
	return t
}

func (t *traceConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.mu.Lock()
	t.down.feed(p[:n])
	t.mu.Unlock()
	return n, err
}

func (t *traceConn) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	t.mu.Lock()
	t.up.feed(p[:n])
	t.mu.Unlock()
	return n, err
}

func (t *traceConn) line(dir, s string) {
	t.log.LogAttrs(context.Background(), slog.LevelInfo, "imap wire", slog.String("dir", dir), slog.String("line", s))
}

// clientLine redacts credentials. cont is true for a line that continues
// a command after a literal; lit is the size of a literal that follows.
// The command name is found after any run of spaces or tabs and matched
// in any letter case, so no spelling of LOGIN or AUTHENTICATE escapes.
func (t *traceConn) clientLine(line []byte, cont bool, lit int64) {
	switch {
	case t.up.redacting && cont:
		t.line("C", "<redacted>")
	case t.authenticating:
		t.line("C", "<redacted SASL response>")
	default:
		tag, rest := nextField(line)
		name, rest := nextField(rest)
		switch up := strings.ToUpper(string(name)); {
		case strings.HasPrefix(up, "LOGIN"):
			t.up.redacting = true
			t.line("C", string(tag)+" "+string(name[:len("LOGIN")])+" <redacted>")
			return
		case strings.HasPrefix(up, "AUTHENTICATE"):
			t.authenticating = true
			out := string(tag) + " " + string(name[:len("AUTHENTICATE")])
			mech, rest := nextField(rest)
			switch {
			case len(name) > len("AUTHENTICATE"):
				out += " <redacted>"
			case len(mech) > 0 && isMechanism(mech):
				out += " " + string(mech)
				if ir, _ := nextField(rest); len(ir) > 0 {
					out += " <redacted>"
				}
			case len(mech) > 0:
				out += " <redacted>"
			}
			t.line("C", out)
			return
		}
		t.line("C", string(line))
	}
	if lit < 0 {
		t.up.redacting = false // the command ended
	}
}

// nextField returns the first field of b (after spaces and tabs) and
// what follows it.
func nextField(b []byte) (field, rest []byte) {
	b = bytes.TrimLeft(b, " \t")
	i := bytes.IndexAny(b, " \t")
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i:]
}

// isMechanism: a SASL mechanism name (RFC 4422 section 3.1), any case.
func isMechanism(b []byte) bool {
	for _, c := range b {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return len(b) <= 20
}

func (t *traceConn) serverLine(line []byte, cont bool, lit int64) {
	if len(line) > 0 && line[0] != '+' && line[0] != '*' && !cont {
		t.authenticating = false // a tagged answer ends AUTHENTICATE
	}
	t.line("S", string(line))
}

// maxTraceLine bounds what one traced line keeps; the rest is counted.
const maxTraceLine = 512

// lineSplitter cuts one direction of IMAP into lines, skipping literal
// contents. emit gets each line without CRLF, whether it continues a
// command after a literal, and the size of the literal announced at its
// end (-1 for none).
type lineSplitter struct {
	emit      func(line []byte, cont bool, lit int64)
	buf       []byte
	dropped   int   // octets of the current line beyond maxTraceLine
	skip      int64 // literal octets still to pass over
	cont      bool  // the current line follows a literal
	redacting bool  // (client) LOGIN: every part of the command is redacted
}

func (l *lineSplitter) feed(p []byte) {
	for len(p) > 0 {
		if l.skip > 0 {
			n := min(int64(len(p)), l.skip)
			l.skip -= n
			p = p[n:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.keep(p)
			return
		}
		l.keep(p[:i])
		p = p[i+1:]
		line := bytes.TrimSuffix(l.buf, []byte{'\r'})
		lit := int64(-1)
		if n, ok := literalSuffix(line); ok {
			lit = n
		}
		out := line
		if l.dropped > 0 {
			out = append(out, []byte(" ... ("+strconv.Itoa(l.dropped)+" more octets)")...)
		}
		if lit >= 0 {
			out = append(out, []byte(" ("+strconv.FormatInt(lit, 10)+"-octet literal not traced)")...)
		}
		l.emit(out, l.cont, lit)
		l.buf, l.dropped = l.buf[:0], 0
		l.cont = lit >= 0
		if lit > 0 {
			l.skip = lit
		}
	}
}

func (l *lineSplitter) keep(p []byte) {
	room := maxTraceLine - len(l.buf)
	if room >= len(p) {
		l.buf = append(l.buf, p...)
		return
	}
	l.buf = append(l.buf, p[:max(room, 0)]...)
	l.dropped += len(p) - max(room, 0)
}
