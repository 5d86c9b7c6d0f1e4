package imapback

import (
	"net"
	"sync"
	"time"
)

// watchConn owns the upstream connection's read deadlines.
//
// go-imap v2 sets none while it waits for a response to begin (a
// black-holed upstream hangs until TCP gives up) and one absolute 5-minute
// deadline per literal (a large message streamed to a slow POP3 client is
// cut off). watchConn ignores both. Instead, while at least one operation
// is in flight (begin/end), every Read must return within timeout: the
// deadline is re-armed at each Read, so a slow consumer never trips it but
// a silent upstream does. A timed-out read fails go-imap's reader, which
// fails every pending command.
type watchConn struct {
	net.Conn
	timeout time.Duration

	// prefix is served before the connection's own bytes: the synthetic
	// greeting after a manual STARTTLS. Only go-imap's reader goroutine
	// reads it, before anything else reads the connection.
	prefix []byte

	mu      sync.Mutex
	busy    int
	expired error       // a read timed out: the connection is dead for good
	filter  *snapFilter // reads the snapshot's responses first (snapfilter.go)
}

func (c *watchConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	c.mu.Lock()
	f := c.filter
	c.mu.Unlock()
	if f != nil {
		return c.readFiltered(f, p)
	}
	return c.readConn(p)
}

// setFilter installs f (snapfilter.go) before the command whose responses
// it reads is sent; the reader goroutine removes it once it passed
// through the rest.
func (c *watchConn) setFilter(f *snapFilter) {
	c.mu.Lock()
	c.filter = f
	c.mu.Unlock()
}

// readConn reads the connection under the watchdog.
func (c *watchConn) readConn(p []byte) (int, error) {
	c.mu.Lock()
	if err := c.expired; err != nil {
		// go-imap's decoder retries after an error (each token tries a
		// read); without this, each retry would wait another timeout.
		c.mu.Unlock()
		return 0, err
	}
	if c.busy > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.mu.Lock()
		c.expired = err
		c.mu.Unlock()
	}
	return n, err
}

// SetReadDeadline ignores go-imap's read deadlines (see watchConn).
func (c *watchConn) SetReadDeadline(time.Time) error { return nil }

// SetDeadline keeps only the write half: go-imap's write deadlines are
// sound (30 s per command).
func (c *watchConn) SetDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(t) }

// begin marks an operation in flight; a Read already blocked (go-imap's
// reader waiting for the next response) gets the deadline too.
func (c *watchConn) begin() {
	c.mu.Lock()
	c.busy++
	if c.busy == 1 {
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	c.mu.Unlock()
}

// end ends an operation; with none left, an idle session may wait for the
// next command as long as the POP3 side allows.
func (c *watchConn) end() {
	c.mu.Lock()
	c.busy--
	if c.busy == 0 {
		c.Conn.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
}
