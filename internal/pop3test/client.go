package pop3test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/popbridge/popbridge/internal/testtb"
)

// Client is a POP3 client for a test: every failure ends the test (Fatal).
// Lines keep their CRLF, so a test can compare replies byte for byte.
type Client struct {
	C net.Conn
	R *bufio.Reader
	t testtb.TB
}

// NewClient wraps an open connection; it reads nothing.
func NewClient(t testtb.TB, c net.Conn) *Client {
	return &Client{C: c, R: bufio.NewReader(c), t: t}
}

// DialClient connects to addr (DialRaw) and reads the greeting, which
// must be +OK.
func DialClient(t testtb.TB, addr string) *Client {
	t.Helper()
	c := DialRaw(t, addr)
	c.ExpectOK("greeting")
	return c
}

// DialRaw connects to addr, with 30 seconds for the whole conversation,
// and reads nothing. The connection is closed when the test ends.
func DialRaw(t testtb.TB, addr string) *Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	return NewClient(t, conn)
}

// Line reads one line, CRLF included.
func (c *Client) Line() string {
	c.t.Helper()
	l, err := c.R.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return l
}

// ExpectOK reads a line that must start with +OK; what names it in the
// failure message.
func (c *Client) ExpectOK(what string) string {
	c.t.Helper()
	l := c.Line()
	if !strings.HasPrefix(l, "+OK") {
		c.t.Fatalf("%s: got %q, want +OK", what, l)
	}
	return l
}

// Cmd sends one command line and returns the status line of its reply.
func (c *Client) Cmd(line string) string {
	c.t.Helper()
	fmt.Fprintf(c.C, "%s\r\n", line)
	return c.Line()
}

// Multi reads a multi-line body up to the terminator, undoing
// dot-stuffing (RFC 1939 section 3).
func (c *Client) Multi() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.Line()
		if l == ".\r\n" {
			return b.String()
		}
		b.WriteString(strings.TrimPrefix(l, "."))
	}
}

// Capa returns the CAPA listing as one string of lines.
func (c *Client) Capa() string {
	c.t.Helper()
	if r := c.Cmd("CAPA"); !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("CAPA: got %q, want +OK", r)
	}
	return c.Multi()
}

// StartTLS runs STLS (RFC 2595 section 4) and the handshake with cfg.
func (c *Client) StartTLS(cfg *tls.Config) {
	c.t.Helper()
	if r := c.Cmd("STLS"); !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("STLS: got %q, want +OK", r)
	}
	tc := tls.Client(c.C, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.C, c.R = tc, bufio.NewReader(tc)
}
