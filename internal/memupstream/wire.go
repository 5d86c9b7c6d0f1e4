package memupstream

import (
	"bytes"
	"io"
	"net"
	"sync"
)

// maxWireLine bounds the per-connection line buffer: longer runs (literal
// data) are written out in pieces.
const maxWireLine = 64 << 10

// wireRecorder serialises writes of whole lines from many connections.
type wireRecorder struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *wireRecorder) write(b []byte) {
	r.mu.Lock()
	r.w.Write(b)
	r.mu.Unlock()
}

type wireListener struct {
	net.Listener
	rec *wireRecorder
}

func (l *wireListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &wireConn{Conn: c, rec: l.rec}, nil
}

// wireConn copies what the server reads to the recorder, one line at a
// time.
type wireConn struct {
	net.Conn
	rec *wireRecorder
	mu  sync.Mutex
	buf []byte
}

func (c *wireConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.buf = append(c.buf, p[:n]...)
		for {
			i := bytes.IndexByte(c.buf, '\n')
			if i < 0 {
				if len(c.buf) > maxWireLine {
					c.rec.write(c.buf)
					c.buf = c.buf[:0]
				}
				break
			}
			c.rec.write(c.buf[:i+1])
			c.buf = c.buf[i+1:]
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *wireConn) Close() error {
	c.mu.Lock()
	if len(c.buf) > 0 {
		c.rec.write(c.buf)
		c.buf = nil
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// sinkListener works around an imapserver leak: when a client goes away
// in the middle of a FETCH, imapmemserver returns the write error without
// closing the response writer, which keeps the connection's encoder lock;
// the connection goroutine then blocks forever on its next response. A
// sinkConn closes the connection on the first write error and reports
// later writes as successful, so the FETCH completes, the lock is
// released and the next read ends the session.
type sinkListener struct{ net.Listener }

func (l sinkListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sinkConn{Conn: c}, nil
}

type sinkConn struct {
	net.Conn
	mu   sync.Mutex
	dead bool
}

func (c *sinkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	dead := c.dead
	c.mu.Unlock()
	if dead {
		return len(p), nil
	}
	if _, err := c.Conn.Write(p); err != nil {
		c.mu.Lock()
		c.dead = true
		c.mu.Unlock()
		c.Conn.Close()
	}
	return len(p), nil
}
