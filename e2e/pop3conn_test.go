package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// pop3Conn is a minimal wire-level POP3 client that returns replies as raw
// bytes, for byte-exact comparisons.
type pop3Conn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

// dialPOP3 connects to addr and reads the greeting, which must be +OK.
func dialPOP3(t testing.TB, addr string) *pop3Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial POP3 %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	p := &pop3Conn{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
	if g := p.line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("POP3 greeting from %s: %q, want prefix %q", addr, g, "+OK")
	}
	return p
}

// login authenticates with USER and PASS.
func (p *pop3Conn) login(user, pass string) {
	p.t.Helper()
	p.ok("USER " + user)
	p.ok("PASS " + pass)
}

// line reads one line, CRLF included.
func (p *pop3Conn) line() string {
	p.t.Helper()
	l, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("POP3 read: %v (partial %q)", err, l)
	}
	return l
}

// cmd sends a command and returns its status line (CRLF included).
func (p *pop3Conn) cmd(command string) string {
	p.t.Helper()
	if _, err := fmt.Fprintf(p.c, "%s\r\n", command); err != nil {
		p.t.Fatalf("POP3 write %q: %v", command, err)
	}
	return p.line()
}

// ok sends a command whose reply must be +OK, and returns the status line.
func (p *pop3Conn) ok(command string) string {
	p.t.Helper()
	s := p.cmd(command)
	if !strings.HasPrefix(s, "+OK") {
		p.t.Fatalf("%s: %q, want prefix %q", command, s, "+OK")
	}
	return s
}

// multi sends a command with a multi-line answer and returns the status line
// and, if it is +OK, the raw body up to and including the terminating
// ".\r\n" (still dot-stuffed).
func (p *pop3Conn) multi(command string) (status string, raw []byte) {
	p.t.Helper()
	status = p.cmd(command)
	if !strings.HasPrefix(status, "+OK") {
		return status, nil
	}
	var b bytes.Buffer
	for {
		l, err := p.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			b.Write(l)
			continue
		}
		if err != nil {
			p.t.Fatalf("%s: reading multi-line reply after %d octets: %v", command, b.Len(), err)
		}
		atLineStart := b.Len() == 0 || b.Bytes()[b.Len()-1] == '\n'
		b.Write(l)
		if atLineStart && string(l) == ".\r\n" {
			return status, b.Bytes()
		}
	}
}

// retr returns message n as the client sees it (dot-stuffing and the
// terminator removed); the reply must be +OK.
func (p *pop3Conn) retr(n int) []byte {
	p.t.Helper()
	status, raw := p.multi(fmt.Sprintf("RETR %d", n))
	if !strings.HasPrefix(status, "+OK") {
		p.t.Fatalf("RETR %d: %q, want prefix %q", n, status, "+OK")
	}
	return unstuff(raw)
}

// close sends nothing and closes the connection (a dropped client).
func (p *pop3Conn) close() { p.c.Close() }

// quit sends QUIT, expects +OK, and reads until the server closes.
func (p *pop3Conn) quit() {
	p.t.Helper()
	p.ok("QUIT")
	_ = p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := p.r.ReadString('\n'); err == nil || rest != "" {
		p.t.Errorf("data after QUIT's reply: %q", rest)
	}
	p.c.Close()
}

// unstuff removes the terminating line and the dot-stuffing from the raw
// body of a multi-line reply.
func unstuff(raw []byte) []byte {
	raw = bytes.TrimSuffix(raw, []byte(".\r\n"))
	var out bytes.Buffer
	out.Grow(len(raw))
	atLineStart := true
	for _, c := range raw {
		if !(atLineStart && c == '.') {
			out.WriteByte(c)
		}
		atLineStart = c == '\n'
	}
	return out.Bytes()
}
